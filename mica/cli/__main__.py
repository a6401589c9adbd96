"""``python -m mica.cli ...``"""

from mica.cli import main

main()
