package main

// `shardproxy admin`: the command-line face of the admin API. Flags and
// output selection only; the client and the table formats are in admin/.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/shardproxy/shardproxy/admin"
	"github.com/shardproxy/shardproxy/keyspace"
)

// tokenEnv is where the token comes from without --token (DESIGN.md 9).
const tokenEnv = "SHARDPROXY_ADMIN_TOKEN"

func adminCmd() *cobra.Command { return newAdminCmd(os.LookupEnv) }

// newAdminCmd takes the environment so tests need not set the process's.
func newAdminCmd(lookupEnv func(string) (string, bool)) *cobra.Command {
	var addr, token, output string
	cmd := &cobra.Command{
		Use:   "admin [--addr URL] [--token T] [-o table|json] status|shards|tables|ranges|split",
		Short: "Inspect and change the cluster through any node's admin API",
		Long: `admin talks to the HTTP admin API of any node (writes are forwarded to the
Raft leader). The token comes from --token or else $` + tokenEnv + `.
Output is a table for people, or the API's JSON with -o json.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&addr, "addr", "http://127.0.0.1:9187", "a node's HTTP address (http_listen)")
	pf.StringVar(&token, "token", "", "admin token (default $"+tokenEnv+")")
	pf.StringVarP(&output, "output", "o", "table", "output format: table or json")

	// run calls the API once and prints the answer in the chosen format.
	run := func(call func(cmd *cobra.Command, c *admin.Client) (tabler, error)) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("-o %s: the output format is table or json", output)
			}
			tok := token
			if tok == "" {
				tok, _ = lookupEnv(tokenEnv)
			}
			if tok == "" {
				return errors.New("no admin token: pass --token or set " + tokenEnv)
			}
			c, err := admin.NewClient(admin.ClientConfig{Addr: addr, Token: tok})
			if err != nil {
				return err
			}
			res, err := call(cmd, c)
			if err != nil {
				return err
			}
			return writeAnswer(cmd.OutOrStdout(), output, res)
		}
	}
	get := func(use, short string, call func(cmd *cobra.Command, c *admin.Client) (tabler, error)) *cobra.Command {
		return &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs, RunE: run(call)}
	}
	cmd.AddCommand(
		get("status", "Every node: role, reachability, map version", func(cmd *cobra.Command, c *admin.Client) (tabler, error) {
			return c.Status(cmd.Context())
		}),
		get("shards", "Shards and how many ranges each owns", func(cmd *cobra.Command, c *admin.Client) (tabler, error) {
			return c.Shards(cmd.Context())
		}),
		get("tables", "Sharded and reference tables", func(cmd *cobra.Command, c *admin.Client) (tabler, error) {
			return c.Tables(cmd.Context())
		}),
		get("ranges", "Key ranges and the shard that owns each", func(cmd *cobra.Command, c *admin.Client) (tabler, error) {
			return c.Ranges(cmd.Context())
		}),
		splitCmd(run),
	)
	return cmd
}

func splitCmd(run func(func(*cobra.Command, *admin.Client) (tabler, error)) func(*cobra.Command, []string) error) *cobra.Command {
	var at, lo string
	cmd := &cobra.Command{
		Use:   "split (--at N | --range LO)",
		Short: "Cut a range in two (no data moves)",
		Long: `split cuts a range of the keyspace in two; both halves stay on the same shard.
--at N cuts the range containing N so that N starts the upper half;
--range LO cuts the range starting at LO in the middle.`,
		Args: cobra.NoArgs,
	}
	cmd.RunE = run(func(cmd *cobra.Command, c *admin.Client) (tabler, error) {
		switch {
		case (at == "") == (lo == ""):
			return nil, errors.New("split needs exactly one of --at N or --range LO")
		case at != "":
			id, err := parseKeyspaceID("--at", at)
			if err != nil {
				return nil, err
			}
			return c.SplitAt(cmd.Context(), id)
		default:
			id, err := parseKeyspaceID("--range", lo)
			if err != nil {
				return nil, err
			}
			return c.SplitRange(cmd.Context(), id)
		}
	})
	cmd.Flags().StringVar(&at, "at", "", "keyspace position that starts the upper half")
	cmd.Flags().StringVar(&lo, "range", "", "start (lo) of the range to cut in the middle")
	return cmd
}

func parseKeyspaceID(flag, s string) (keyspace.ID, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s %s: a keyspace position is an integer from -9223372036854775808 to 9223372036854775807", flag, s)
	}
	return keyspace.ID(v), nil
}

// tabler is every answer type: each writes itself as a table.
type tabler interface {
	WriteTable(w io.Writer) error
}

func writeAnswer(w io.Writer, output string, res tabler) error {
	if output == "json" {
		return admin.WriteJSON(w, res)
	}
	return res.WriteTable(w)
}
