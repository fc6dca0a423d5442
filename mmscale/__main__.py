from mmscale.cli import main

main()
