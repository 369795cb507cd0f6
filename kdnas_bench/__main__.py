from kdnas_bench.cli import main

main()
