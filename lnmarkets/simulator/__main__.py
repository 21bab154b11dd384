from lnmarkets.simulator.cli import main

main()
