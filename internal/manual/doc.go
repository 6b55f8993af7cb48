// Package manual holds no code: its test keeps keygate's Markdown files
// (the README, CONTRIBUTING.md and the manual in docs/) true to the
// repository. Every relative link must reach a file and every #anchor a
// heading of that file, as GitHub renders them; every `make <target>` shown
// in code must be a target of the Makefile; every `keygate <command>` shown
// in code must be a command the CLI answers -h for. A broken link or a
// renamed command then fails `make test`, not a reader.
package manual
