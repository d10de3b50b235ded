from lamina.cli.entry import run

run()
