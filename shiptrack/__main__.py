from shiptrack.app.cli import main

main()
