"""``python -m hsbench`` (also what ``torchrun -m hsbench`` launches)."""

import sys

from hsbench.cli import main

sys.exit(main())
