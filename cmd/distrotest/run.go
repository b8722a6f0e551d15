package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/distrotest/distrotest/cmd/internal/cache"
	"github.com/distrotest/distrotest/cmd/internal/driver"
	"github.com/distrotest/distrotest/cmd/internal/imagebuild"
	"github.com/distrotest/distrotest/cmd/internal/machine"
	"github.com/distrotest/distrotest/cmd/internal/pybridge"
	"github.com/distrotest/distrotest/cmd/internal/qemu"
	"github.com/distrotest/distrotest/cmd/internal/report"
)

// runFlags are `distrotest run`'s flags.
type runFlags struct {
	config      string
	outDir      string
	junit       string
	interactive bool
	keepState   bool
	internet    bool
	accel       string
	timeout     secondsOrDuration
	transport   string
	virtiofsd   string
	noRestore   bool
	snapshotDir string
	snapOnly    bool

	image    string
	name     string
	memory   int
	cpus     int
	shares   []string
	nixStore string

	noInstrument bool
}

func newRunCommand(g *globalOptions) *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "run (--config driver.json | --image IMAGE [flags] SCRIPT)",
		Short: "Run a test: boot the machines and run the Python test script",
		Long: `Run a test, from a driver.json written by the Nix library (--config), or ad hoc
with one machine booted from a prepared image directory, DISTRO/RELEASE or a
disk image file (--image; DISTRO/RELEASE is built and patched through the
image cache by distrotest-gen, a qcow2 or raw file is patched through it as
the release its /etc/os-release names).

The log goes to stderr; the out dir (default ./distrotest-out, or $out in a
Nix build) receives <machine>/console.log, screenshots, files copied from the
machines and, with --junit, the JUnit report. The exit status is 0 only when
the script passed. Nothing is left behind: machines, sockets, disk overlays
and temporary directories are removed on every exit, also on Ctrl-C, SIGTERM
or the global timeout (--keep-vm-state keeps the disks, for the next run).

Guests reach only the test's VLANs unless --internet gives them a default
route through QEMU's user-mode NAT (the Nix driver scripts pass it; add
--internet=false for VLAN-only isolation). $QEMU_OPTS, split at white space
as a shell would split $QEMU_OPTS, is appended to every machine's QEMU
command line.`,
		Example: `  distrotest run --config result/driver.json --junit junit.xml
  distrotest run --image debian/13 examples/hello.py
  distrotest run --image ./debian-13-generic-amd64.qcow2 examples/hello.py
  distrotest run --image ./prepared --share data=./data:/mnt/data --memory 2048 test.py
  distrotest run --image debian/13 --interactive examples/hello.py`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case f.config != "" && f.image != "":
				return errors.New("give --config or --image, not both")
			case f.config == "" && f.image == "":
				return errors.New("give --config driver.json, or --image IMAGE and a script")
			case f.config != "" && len(args) > 0:
				return fmt.Errorf("unexpected argument %q: the script comes from --config", args[0])
			case f.image != "" && len(args) != 1:
				return errors.New("--image needs exactly one script argument")
			}
			if f.noRestore && (f.snapOnly || f.snapshotDir != "") {
				return errors.New("--no-restore goes with neither --snapshot-only nor --snapshot-dir")
			}
			if f.snapOnly && f.interactive {
				return errors.New("--snapshot-only runs no script: not with --interactive")
			}
			if f.config != "" {
				for _, name := range []string{"name", "memory", "cpus", "share", "nix-store", "no-instrument"} {
					if cmd.Flags().Changed(name) {
						return fmt.Errorf("--%s goes with --image; with --config, the machines come from the file", name)
					}
				}
			}
			return nil
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			return []string{"py"}, cobra.ShellCompDirectiveFilterFileExt
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTest(cmd, g, f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.config, "config", "c", "", "driver.json describing the test")
	fl.StringVarP(&f.outDir, "out-dir", "o", "", "directory for console logs, screenshots, copies and the JUnit report (default ./distrotest-out, or $out; alias --output_directory)")
	fl.StringVar(&f.junit, "junit", "", "write a JUnit XML report to this file (relative to the out dir; alias --junit-xml)")
	fl.BoolVarP(&f.interactive, "interactive", "I", false, "open a Python shell with the test's globals instead of running the script; machines start when asked")
	fl.Var(noFlag{&f.interactive}, "no-interactive", "run the script (the default; undoes an earlier --interactive)")
	fl.Lookup("no-interactive").NoOptDefVal = "true"
	fl.BoolVarP(&f.keepState, "keep-vm-state", "K", false, "keep the machines' disks (in the cache) and reuse them next run (alias --keep-machine-state)")
	fl.BoolVar(&f.internet, "internet", false, "give the guests a default route through QEMU's user-mode NAT (otherwise only the test's VLANs are reachable)")
	fl.StringVar(&f.accel, "accel", "", "accelerator: auto (KVM only when it really boots a kernel), kvm or tcg (default: the config's, else auto)")
	fl.Var(&f.timeout, "global-timeout", "end the run after this long (e.g. 30m, or seconds; default: the config's, else 1h)")
	fl.BoolVar(&f.noInstrument, "no-instrument", false, "ad hoc: boot the --image file as it is, without the backdoor (console-only tests; shell calls fail)")
	fl.StringVar(&f.image, "image", "", "ad hoc: prepared image directory, qcow2/raw disk image, or DISTRO/RELEASE (e.g. debian/13)")
	fl.StringVar(&f.name, "name", "machine", "ad hoc: the machine's name")
	fl.IntVar(&f.memory, "memory", driver.DefaultMemoryMiB, "ad hoc: memory in MiB")
	fl.IntVar(&f.cpus, "cpus", driver.DefaultCPUs, "ad hoc: virtual CPUs")
	fl.StringArrayVar(&f.shares, "share", nil, "ad hoc: mount host directory SOURCE at TARGET in the guest (TAG=SOURCE:TARGET[:ro], repeatable)")
	fl.StringVar(&f.transport, "share-transport", "", "carry the Nix store and shares over 9p or virtiofs on every machine (default: the config's, else the image's, else "+driver.DefaultShareTransport+" when a virtiofsd is found)")
	fl.StringVar(&f.virtiofsd, "virtiofsd", "", "the virtiofsd binary (default: $DISTROTEST_VIRTIOFSD, then virtiofsd in PATH, then "+strings.Join(machine.VirtiofsdPaths, ", ")+")")
	fl.BoolVar(&f.noRestore, "no-restore", false, "boot every machine cold instead of restoring it from the snapshot of its shape (kept in the cache, made by the first boot of that shape)")
	fl.StringVar(&f.snapshotDir, "snapshot-dir", "", "restore machines from the snapshots in this directory (may be read-only, e.g. a snapshot in the Nix store) instead of the cache's")
	fl.BoolVar(&f.snapOnly, "snapshot-only", false, "make the snapshots of the machines' shapes (in --snapshot-dir or the cache) and exit without running the script")
	fl.StringVar(&f.nixStore, "nix-store", "", "ad hoc: mount this host Nix store read-only over /nix/store")
	// nixpkgs' nixos-test-driver spellings, so wrappers that call the
	// driver binary (extraDriverArgs) keep working.
	cmd.SetGlobalNormalizationFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if alias, ok := nixpkgsFlagAliases[name]; ok {
			name = alias
		}
		return pflag.NormalizedName(name)
	})
	cmd.RegisterFlagCompletionFunc("accel", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"auto", "kvm", "tcg"}, cobra.ShellCompDirectiveNoFileComp
	})
	cmd.RegisterFlagCompletionFunc("share-transport", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"9p", "virtiofs"}, cobra.ShellCompDirectiveNoFileComp
	})
	cmd.RegisterFlagCompletionFunc("image", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		var refs []string
		for _, r := range imagebuild.Releases() {
			refs = append(refs, r.Ref())
		}
		return refs, cobra.ShellCompDirectiveDefault
	})
	return cmd
}

func runTest(cmd *cobra.Command, g *globalOptions, f *runFlags, args []string) error {
	ctx := cmd.Context()
	if f.interactive {
		// Ctrl-C belongs to the Python shell (it interrupts the current
		// command); only SIGTERM and SIGHUP end the run.
		sigint := make(chan os.Signal, 1)
		signal.Notify(sigint, os.Interrupt)
		defer signal.Stop(sigint)
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(context.WithoutCancel(ctx), syscall.SIGTERM, syscall.SIGHUP)
		defer stop()
	}
	accel, err := qemu.Accel(f.accel, "")
	if err != nil {
		return fmt.Errorf("--accel %w", err)
	}
	if accel == "auto" {
		if accel, err = qemu.Accel(accel, os.Getenv(qemu.EnvAccel)); err != nil {
			return fmt.Errorf("$%s %w", qemu.EnvAccel, err)
		}
	}
	outDir := f.outDir
	if outDir == "" {
		outDir = defaultOutDir()
	}
	if f.transport == "" {
		// An empty flag means no choice; an empty value given is a mistake.
		if cmd.Flags().Changed("share-transport") {
			return errors.New("--share-transport: want 9p or virtiofs")
		}
	} else if err := driver.CheckShareTransport(f.transport); err != nil {
		return fmt.Errorf("--share-transport %w", err)
	}
	cacheDir, err := cache.DefaultDir()
	if err != nil {
		return err
	}
	explicit := f.virtiofsd
	if explicit == "" {
		explicit = os.Getenv("DISTROTEST_VIRTIOFSD")
	}
	virtiofsd, err := driver.FindVirtiofsd(explicit, exec.LookPath)
	if err != nil {
		return err
	}

	var cfg *driver.Config
	if f.config != "" {
		if cfg, err = driver.Load(f.config); err != nil {
			return err
		}
	} else {
		var prepareArgs []string
		if f.noInstrument {
			if fi, err := os.Stat(f.image); err != nil || !fi.Mode().IsRegular() {
				return fmt.Errorf("--no-instrument goes with --image FILE (a qcow2 or raw disk image), not %q", f.image)
			}
			prepareArgs = append(prepareArgs, "--no-instrument")
		}
		image, err := driver.ResolveImage(ctx, f.image, cacheDir, cmd.ErrOrStderr(), prepareArgs...)
		if err != nil {
			return err
		}
		cfg, err = driver.AdHoc{
			Script:    args[0],
			Image:     image,
			Name:      f.name,
			MemoryMiB: f.memory,
			CPUs:      f.cpus,
			Shares:    f.shares,
			NixStore:  f.nixStore,
		}.Config()
		if err != nil {
			return err
		}
	}
	return driver.Run(ctx, cfg, driver.Options{
		OutDir:         outDir,
		JUnit:          f.junit,
		Interactive:    f.interactive,
		KeepState:      f.keepState,
		Internet:       f.internet,
		ExtraQEMUArgs:  qemuOpts(os.Getenv(qemu.EnvOpts)),
		Accel:          accel,
		Python:         os.Getenv(pybridge.EnvPython),
		ShareTransport: f.transport,
		Virtiofsd:      virtiofsd,
		NoRestore:      f.noRestore,
		SnapshotDir:    f.snapshotDir,
		SnapshotOnly:   f.snapOnly,
		GlobalTimeout:  time.Duration(f.timeout),
		CacheDir:       cacheDir,
		Stdin:          os.Stdin,
		Stdout:         os.Stdout,
		Stderr:         os.Stderr,
		Color:          report.UseColor(os.Stderr),
		LogLevel:       g.logLevel,
	})
}

// nixpkgsFlagAliases maps nixpkgs' driver flag names to ours.
var nixpkgsFlagAliases = map[string]string{
	"junit-xml":          "junit",
	"output_directory":   "out-dir",
	"output-directory":   "out-dir",
	"keep-machine-state": "keep-vm-state",
}

// noFlag is a --no-X flag that clears the bool of --X: the one given last
// wins, as with argparse's BooleanOptionalAction in nixpkgs.
type noFlag struct{ b *bool }

func (n noFlag) String() string {
	if n.b == nil {
		return "false"
	}
	return strconv.FormatBool(!*n.b)
}

func (n noFlag) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	if v {
		*n.b = false
	}
	return nil
}

func (n noFlag) Type() string     { return "bool" }
func (n noFlag) IsBoolFlag() bool { return true }

// qemuOpts splits $QEMU_OPTS into QEMU arguments as nix-vm-test's and
// nixpkgs' VM scripts do (an unquoted $QEMU_OPTS: split at white space, no
// quote removal).
func qemuOpts(env string) []string {
	if strings.TrimSpace(env) == "" {
		return nil
	}
	return strings.Fields(env)
}

// secondsOrDuration is a flag taking a Go duration ("90m") or, as nixpkgs'
// driver, a number of seconds ("3600").
type secondsOrDuration time.Duration

func (d *secondsOrDuration) String() string {
	if *d == 0 {
		return ""
	}
	return time.Duration(*d).String()
}

func (d *secondsOrDuration) Set(s string) error {
	if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
		if n <= 0 {
			return errors.New("want a positive duration")
		}
		*d = secondsOrDuration(time.Duration(n) * time.Second)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return errors.New("want a positive duration like 30m or 1h30m, or seconds")
	}
	*d = secondsOrDuration(v)
	return nil
}

func (d *secondsOrDuration) Type() string { return "duration" }

// defaultOutDir is $out inside a Nix build, driver.DefaultOutDir otherwise.
func defaultOutDir() string {
	if out := os.Getenv("out"); out != "" {
		return out
	}
	return driver.DefaultOutDir
}
