import sys

from fedureid.cli import main

sys.exit(main())
