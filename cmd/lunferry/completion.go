package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

const bashCompletion = `# bash completion for lunferry: source it, or install it as
# /etc/bash_completion.d/lunferry
_lunferry() {
  local cur opts
  COMPREPLY=()
  cur="${COMP_WORDS[COMP_CWORD]}"
  if [[ "$cur" == "-"* ]]; then
    opts=$("${COMP_WORDS[@]:0:$COMP_CWORD}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    opts=$("${COMP_WORDS[@]:0:$COMP_CWORD}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "${opts}" -- "${cur}"))
  return 0
}
complete -o bashdefault -o default -F _lunferry lunferry
`

const zshCompletion = `#compdef lunferry
# zsh completion for lunferry: put it in a directory of $fpath as _lunferry
_lunferry() {
  local -a opts
  local cur="${words[-1]}"
  if [[ "$cur" == "-"* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} --generate-bash-completion 2>/dev/null)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion 2>/dev/null)}")
  fi
  if [[ "${opts[1]}" != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}
compdef _lunferry lunferry
`

func (a *app) completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print the shell completion script (bash or zsh)",
		ArgsUsage: "bash|zsh",
		Action: func(c *cli.Context) error {
			switch c.Args().First() {
			case "bash":
				fmt.Fprint(a.stdout, bashCompletion)
			case "zsh":
				fmt.Fprint(a.stdout, zshCompletion)
			default:
				return usageError{fmt.Errorf("completion: say bash or zsh, e.g. `lunferry completion bash > /etc/bash_completion.d/lunferry`")}
			}
			return nil
		},
	}
}
