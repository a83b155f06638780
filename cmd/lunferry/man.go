package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cpuguy83/go-md2man/v2/md2man"
	"github.com/urfave/cli/v2"
)

// manCommand writes the man pages, generated from the command tree itself
// (urfave/cli's ToMan): lunferry(8) with every command, and one page per
// command, lunferry-run(8) and so on. `make man` runs it; the Debian
// package installs the pages. Hidden: it is a build step, not an admin's.
func (a *app) manCommand() *cli.Command {
	return &cli.Command{
		Name:      "man",
		Usage:     "write the man pages (section 8) into DIR",
		ArgsUsage: "DIR",
		Hidden:    true,
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, "the directory to write the pages into"); err != nil {
				return err
			}
			return writeManPages(c.App, c.Args().First())
		},
	}
}

// writeManPages writes lunferry.8 and lunferry-COMMAND.8 into dir. A
// command's page shows the global options and that command's section of
// the tree (its flags, its subcommands).
func writeManPages(root *cli.App, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("man: %w", err)
	}
	pages := map[string]*cli.App{root.Name: {
		Name: root.Name, Usage: root.Usage, Flags: root.Flags, Commands: root.Commands,
		Description: preformatted(root.Description) + "\n\n# EXIT CODES\n\n" + preformatted(strings.TrimPrefix(exitCodesHelp, "EXIT CODES:\n")),
	}}
	for _, cmd := range pageCommands(root) {
		name := root.Name + "-" + cmd.Name
		pages[name] = &cli.App{
			Name: name, Usage: cmd.Usage, Flags: root.Flags, Commands: []*cli.Command{cmd},
			UsageText:   fmt.Sprintf("%s [GLOBAL OPTIONS] %s [OPTIONS]%s", root.Name, cmd.Name, usageArgs(cmd)),
			Description: preformatted(cmd.Description),
		}
	}
	for name, page := range pages {
		md, err := page.ToMarkdown()
		if err != nil {
			return fmt.Errorf("man: %s: %w", name, err)
		}
		md = fmt.Sprintf("%% %s 8\n\n%s\n\n# SEE ALSO\n\n%s\n", name, md, seeAlso(root, name))
		if err := os.WriteFile(filepath.Join(dir, name+".8"), md2man.Render([]byte(md)), 0o644); err != nil {
			return fmt.Errorf("man: %w", err)
		}
	}
	return nil
}

// pageCommands are the commands that get a page of their own.
func pageCommands(root *cli.App) []*cli.Command {
	var out []*cli.Command
	for _, cmd := range root.VisibleCommands() {
		if cmd.Name != "help" {
			out = append(out, cmd)
		}
	}
	return out
}

// preformatted keeps help text written for a terminal (hard-wrapped,
// indented tables) as it is: markdown would join its lines.
func preformatted(s string) string {
	if s == "" {
		return ""
	}
	return "```\n" + strings.TrimRight(s, "\n") + "\n```"
}

// usageArgs is " " + the command's ArgsUsage, or " COMMAND" for a command
// with subcommands.
func usageArgs(cmd *cli.Command) string {
	switch {
	case cmd.ArgsUsage != "":
		return " " + cmd.ArgsUsage
	case len(cmd.Subcommands) > 0:
		return " COMMAND [ARGUMENTS...]"
	}
	return ""
}

// seeAlso lists the other pages than skip's.
func seeAlso(root *cli.App, skip string) string {
	var refs []string
	for _, name := range append([]string{root.Name}, commandPages(root)...) {
		if name != skip {
			refs = append(refs, "**"+name+"**(8)")
		}
	}
	return strings.Join(refs, ", ")
}

func commandPages(root *cli.App) []string {
	var names []string
	for _, cmd := range pageCommands(root) {
		names = append(names, root.Name+"-"+cmd.Name)
	}
	return names
}
