from mltoolkit.cli import main

main()
