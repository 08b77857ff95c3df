import sys

from facecap.cli import main

sys.exit(main())
