from placer.cli.main import main

main()
