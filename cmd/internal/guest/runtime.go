package guest

import (
	"bytes"
	"strings"
)

// Where the runtime plan puts things: /run survives switch-root (the
// initrd moves it into the real root), and the real root's systemd loads
// units from /run/systemd/system.
const (
	runtimeUnitDir   = "/run/systemd/system"
	runtimeScriptDir = "/run/distrotest"
)

// RuntimePlan is PlanFor(f) placed under /run, for images whose disk is
// not written (the initrd strategy, package initrd): units, their .wants
// links and masks in /run/systemd/system, scripts in /run/distrotest,
// started through /bin/bash (the scripts are bash) because initramfs-tools
// mounts /run noexec, and because under SELinux init may not execute a
// file in /run (var_run_t) but bash (bin_t) may read it.
func RuntimePlan(f Family) Plan {
	disk := PlanFor(f)
	move := func(p string) string {
		switch {
		case strings.HasPrefix(p, unitDir+"/"), p == unitDir:
			return runtimeUnitDir + strings.TrimPrefix(p, unitDir)
		case strings.HasPrefix(p, scriptDir+"/"), p == scriptDir:
			return runtimeScriptDir + strings.TrimPrefix(p, scriptDir)
		}
		return ""
	}
	var p Plan
	for _, d := range disk.Dirs {
		if m := move(d.Path); m != "" {
			p.Dirs = append(p.Dirs, Dir{Path: m, Mode: d.Mode})
		}
	}
	for _, file := range disk.Files {
		data := bytes.ReplaceAll(file.Data, []byte("ExecStart="+scriptDir+"/"), []byte("ExecStart=/bin/bash "+runtimeScriptDir+"/"))
		p.Files = append(p.Files, File{Path: move(file.Path), Mode: file.Mode, Data: data})
	}
	for _, s := range disk.Symlinks {
		target := s.Target
		if m := move(target); m != "" {
			target = m
		}
		p.Symlinks = append(p.Symlinks, Symlink{Path: move(s.Path), Target: target})
	}
	return p
}
