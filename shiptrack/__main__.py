from shiptrack.cli import main

main()
