import sys

from pyk3s.cli.main import main

sys.exit(main())
