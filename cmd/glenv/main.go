// Command glenv is the glenv server and its command-line client.
package main

import (
	"os"

	"github.com/glenv/glenv/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
