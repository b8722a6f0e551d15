# A stand-in for nixpkgs, for testing lib/ on machines that cannot fetch
# nixpkgs. It offers exactly the attributes lib/ and tests/default.nix use,
# with nixpkgs' argument names and output layout, built from host tools:
# derivations run /bin/bash from the host, which the sandbox sees through
# `extra-sandbox-paths` (see scripts/check-nix.sh). Nothing here is shipped.
#
#   import ./stand-in.nix {
#     goModCache = "/root/go/pkg/mod";               # read-only in the sandbox
#     localImages = { "<url in gen/>" = "/path/to/disk.qcow2"; };
#   }
{
  system ? "x86_64-linux",
  # `go env GOMODCACHE`: `go mod vendor` runs offline against it
  goModCache ? throw "stand-in: pass goModCache (go env GOMODCACHE) to build Go packages",
  # fetchurl has no network here: url → local file standing in for it
  localImages ? { },
  # when set, fetchurl returns this file for any other url (evaluation tests)
  anyImage ? null,
  # host tools, after the inputs' bin directories
  hostPath ? "/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  # the host's unprivileged virtiofsd (scripts/install-virtiofsd.sh); the
  # sandbox must see its prefix (extra-sandbox-paths)
  hostVirtiofsd ? "/opt/distrotest/virtiofsd/bin/virtiofsd",
  # nixpkgs' lib, by default the stand-in's; scripts/check-real-nixpkgs.sh
  # passes the real one
  lib ? import ./stand-in-lib.nix,
}:
let

  # stdenv.mkDerivation for `buildCommand` derivations: inputs' bin dirs on
  # PATH, their nix-support/setup-hook sourced, `env` exported, passthru
  # merged into the result, overrideAttrs (previous-attributes form).
  mkDerivation =
    attrs:
    let
      passthru = attrs.passthru or { };
      env = attrs.env or { };
      drvAttrs =
        builtins.removeAttrs attrs [
          "passthru"
          "meta"
          "env"
        ]
        // env
        // {
          inherit system;
          builder = "/bin/bash";
          args = [
            "-c"
            ''
              set -euo pipefail
              PATH=
              for p in ''${nativeBuildInputs:-}; do
                if [ -d "$p/bin" ]; then PATH="$PATH''${PATH:+:}$p/bin"; fi
              done
              export PATH="$PATH''${PATH:+:}$standInHostPath"
              for p in ''${nativeBuildInputs:-}; do
                if [ -f "$p/nix-support/setup-hook" ]; then source "$p/nix-support/setup-hook"; fi
              done
              cd "$TMPDIR"
              eval "$buildCommand"
            ''
          ];
          standInHostPath = hostPath;
        };
      drv = derivation drvAttrs;
    in
    drv
    // passthru
    // {
      meta = attrs.meta or { };
      inherit passthru;
      overrideAttrs = f: mkDerivation (attrs // f attrs);
    };

  runCommand =
    name: env: buildCommand:
    mkDerivation (
      env
      // {
        inherit name buildCommand;
      }
    );

  writeText =
    name: text:
    mkDerivation {
      inherit name text;
      passAsFile = [ "text" ];
      buildCommand = ''cp "$textPath" "$out"'';
    };

  makeBinPath = pkgs: builtins.concatStringsSep ":" (map (p: "${p}/bin") pkgs);

  writeShellApplication =
    {
      name,
      text,
      runtimeInputs ? [ ],
      meta ? { },
    }:
    mkDerivation {
      inherit name;
      meta = {
        mainProgram = name;
      }
      // meta;
      script = ''
        #!/bin/bash
        set -o errexit
        set -o nounset
        set -o pipefail

        export PATH="${makeBinPath runtimeInputs}:$PATH"

        ${text}
      '';
      passAsFile = [ "script" ];
      buildCommand = ''
        mkdir -p "$out/bin"
        cp "$scriptPath" "$out/bin/${name}"
        chmod +x "$out/bin/${name}"
        bash -n "$out/bin/${name}"
      '';
    };

  # Host programs exposed as a package: $out/bin/<prog> → the host binary.
  hostPackage =
    name: programs:
    runCommand "stand-in-${name}" { } ''
      mkdir -p "$out/bin"
      for prog in ${toString programs}; do
        if path=$(command -v "$prog"); then
          ln -s "$path" "$out/bin/$prog"
        fi
      done
      if [ -z "$(ls "$out/bin")" ]; then
        echo "stand-in ${name}: none of ${toString programs} on the host" >&2
        exit 1
      fi
    '';

  qemuPrograms = [
    "qemu-system-x86_64"
    "qemu-system-aarch64"
    "qemu-img"
  ];

  go = hostPackage "go" [
    "go"
    "gofmt"
  ];

  # installShellFiles' installShellCompletion, for `--cmd NAME --bash|--fish|--zsh FILE`
  installShellFiles = runCommand "stand-in-install-shell-files" { } ''
    mkdir -p "$out/nix-support"
    cat > "$out/nix-support/setup-hook" <<'EOF'
    installShellCompletion() {
      local cmd="" shell file dest
      while [ $# -gt 0 ]; do
        case "$1" in
          --cmd) cmd=$2; shift 2 ;;
          --bash|--fish|--zsh)
            shell=''${1#--}; file=$2; shift 2
            case $shell in
              bash) dest=$out/share/bash-completion/completions/$cmd.bash ;;
              fish) dest=$out/share/fish/vendor_completions.d/$cmd.fish ;;
              zsh) dest=$out/share/zsh/site-functions/_$cmd ;;
            esac
            mkdir -p "$(dirname "$dest")"
            cat "$file" > "$dest"
            if [ ! -s "$dest" ]; then
              echo "installShellCompletion: $dest is empty" >&2
              return 1
            fi ;;
          *) echo "installShellCompletion (stand-in): unsupported argument $1" >&2; return 1 ;;
        esac
      done
    }
    EOF
  '';

  # makeWrapper's wrapProgram, for `wrapProgram PROG --prefix PATH : DIRS`
  makeWrapper = runCommand "stand-in-make-wrapper" { } ''
    mkdir -p "$out/nix-support"
    cat > "$out/nix-support/setup-hook" <<'EOF'
    wrapProgram() {
      local prog=$1 dir base
      shift
      if [ $# -ne 4 ] || [ "$1" != --prefix ] || [ "$2" != PATH ] || [ "$3" != : ]; then
        echo "wrapProgram (stand-in): only --prefix PATH : DIRS is supported, got $*" >&2
        return 1
      fi
      dir=$(dirname "$prog") base=$(basename "$prog")
      mv "$prog" "$dir/.$base-wrapped"
      printf '#!/bin/bash\nexport PATH=%q''${PATH:+:}"$PATH"\nexec -a "$0" %q "$@"\n' "$4" "$dir/.$base-wrapped" > "$prog"
      chmod +x "$prog"
    }
    EOF
  '';

  # What nixpkgs' stdenv puts on a build's PATH (coreutils, findutils,
  # diffutils, sed, grep, gawk, tar, gzip, bzip2, xz, make, patch, bash,
  # file), from the host. The Go tests run with only these and the
  # derivation's inputs on PATH, as in a real sandbox: host tools such as
  # nix-instantiate, mkfs.ext4 or sgdisk are not there, so tests needing
  # them skip as they would under real nixpkgs.
  stdenvTools = hostPackage "stdenv-tools" [
    "bash" "sh" "find" "xargs" "diff" "cmp" "sed" "grep" "egrep" "fgrep" "awk" "gawk"
    "tar" "gzip" "gunzip" "zcat" "bzip2" "xz" "make" "patch" "file"
    "arch" "b2sum" "base32" "base64" "basename" "basenc" "cat" "chcon" "chgrp" "chmod"
    "chown" "chroot" "cksum" "comm" "cp" "csplit" "cut" "date" "dd" "df" "dir" "dircolors"
    "dirname" "du" "echo" "env" "expand" "expr" "factor" "false" "fmt" "fold" "groups" "head"
    "hostid" "id" "install" "join" "link" "ln" "logname" "ls" "md5sum" "mkdir" "mkfifo"
    "mknod" "mktemp" "mv" "nice" "nl" "nohup" "nproc" "numfmt" "od" "paste" "pathchk"
    "pinky" "pr" "printenv" "printf" "ptx" "pwd" "readlink" "realpath" "rm" "rmdir" "runcon"
    "seq" "sha1sum" "sha224sum" "sha256sum" "sha384sum" "sha512sum" "shred" "shuf" "sleep"
    "sort" "split" "stat" "stdbuf" "stty" "sum" "sync" "tac" "tail" "tee" "test" "timeout"
    "touch" "tr" "true" "truncate" "tsort" "tty" "uname" "unexpand" "uniq" "unlink" "users"
    "vdir" "wc" "who" "whoami" "yes"
  ];

  # buildGoModule: a fixed-output goModules derivation (`go mod vendor`,
  # NAR-hashed against vendorHash, overridable with overrideModAttrs), then
  # `go install` of subPackages with -mod=vendor -trimpath and tags, optional
  # `go test`, $GOPATH/bin → $out/bin, postInstall.
  buildGoModule =
    args@{
      pname,
      version,
      src,
      vendorHash,
      name ? "${pname}-${version}",
      subPackages ? [ ],
      overrideModAttrs ? (_: { }),
      ldflags ? [ ],
      tags ? [ ],
      env ? { },
      nativeBuildInputs ? [ ],
      nativeCheckInputs ? [ ],
      doCheck ? true,
      postInstall ? "",
      meta ? { },
    }:
    let
      modAttrs0 = {
        name = "${name}-go-modules";
        inherit src env;
        nativeBuildInputs = nativeBuildInputs ++ [ go ];
        outputHashMode = "recursive";
        outputHash = vendorHash;
        GOMODCACHE = goModCache;
        GOPROXY = "off";
        GOTOOLCHAIN = "local";
        GO111MODULE = "on";
        buildCommand = ''
          export GOCACHE="$TMPDIR/go-cache" GOPATH="$TMPDIR/go" HOME="$TMPDIR"
          cp -r "$src" source
          chmod -R u+w source
          cd source
          if [ -d vendor ]; then echo "vendor folder exists" >&2; exit 10; fi
          go mod vendor
          cp -r vendor "$out"
        '';
      };
      goModules = mkDerivation (modAttrs0 // overrideModAttrs modAttrs0);
    in
    mkDerivation {
      inherit
        name
        pname
        version
        src
        env
        subPackages
        doCheck
        postInstall
        meta
        ;
      nativeBuildInputs = [ go ] ++ nativeBuildInputs ++ (if doCheck then nativeCheckInputs else [ ]);
      inherit goModules;
      ldflags = toString (ldflags ++ [ "-buildid=" ]);
      tags = builtins.concatStringsSep "," tags;
      checkPath = makeBinPath ([ go ] ++ nativeBuildInputs ++ nativeCheckInputs ++ [ stdenvTools ]);
      GOFLAGS = "-mod=vendor -trimpath";
      GOPROXY = "off";
      GOSUMDB = "off";
      GOTOOLCHAIN = "local";
      GO111MODULE = "on";
      passthru = {
        inherit goModules vendorHash;
      };
      buildCommand = ''
        export GOCACHE="$TMPDIR/go-cache" GOPATH="$TMPDIR/go" HOME="$TMPDIR"
        cp -r "$src" source
        chmod -R u+w source
        cd source
        rm -rf vendor
        cp -r "$goModules" vendor
        if [ -n "$subPackages" ]; then
          dirs=$(for p in $subPackages; do echo "./$p"; done)
        else
          dirs=$(find . -type f -name '*.go' -exec dirname {} \; | grep -v '^./vendor' |
            sort -u | grep -v '\(/_\|examples\|Godeps\|testdata\)' || true)
        fi
        tolerated='(no( buildable| non-test)?|build constraints exclude all) Go (source )?files'
        for d in $dirs; do
          echo "building $d"
          if ! log=$(go install -ldflags="$ldflags" -tags="$tags" "$d" 2>&1); then
            if ! grep -qE "$tolerated" <<<"$log"; then echo "$log" >&2; exit 1; fi
          fi
        done
        if [ -n "$doCheck" ]; then
          # as in nixpkgs: HOME does not exist (the build user has none),
          # PATH has the inputs and stdenv's tools only
          export GOFLAGS="-mod=vendor" HOME=/homeless-shelter PATH="$checkPath"
          # nixpkgs stops at the first failing package; this tests them all
          # (the build fails the same), so that one run names every failure
          failed=""
          for d in $dirs; do
            if ls "$d"/*_test.go >/dev/null 2>&1; then
              echo "testing $d"
              go test -vet=off "$d" || failed="$failed $d"
            fi
          done
          if [ -n "$failed" ]; then echo "failed:$failed" >&2; exit 1; fi
        fi
        mkdir -p "$out"
        if [ -d "$GOPATH/bin" ]; then cp -r "$GOPATH/bin" "$out/"; fi
        eval "$postInstall"
      '';
    };

  # nixpkgs' virtiofsd: bin/virtiofsd, here the host's wrapper.
  virtiofsd = runCommand "stand-in-virtiofsd" { } ''
    if [ ! -x ${hostVirtiofsd} ]; then
      echo "stand-in virtiofsd: ${hostVirtiofsd} is missing (scripts/install-virtiofsd.sh), or the sandbox cannot see it" >&2
      exit 1
    fi
    mkdir -p "$out/bin"
    ln -s ${hostVirtiofsd} "$out/bin/virtiofsd"
  '';

  # nixpkgs' closureInfo { rootPaths }: $out/store-paths and
  # $out/registration (the format of `nix-store --dump-db`, which
  # `nix-store --load-db` reads) of the closure of rootPaths. As in
  # nixpkgs, from the reference graph Nix exports with structured
  # attributes; there jq writes the files, here the host's python3.
  closureInfo =
    { rootPaths }:
    derivation {
      name = "closure-info";
      inherit system;
      builder = "/bin/bash";
      __structuredAttrs = true;
      exportReferencesGraph.closure = rootPaths;
      args = [
        "-c"
        ''
          set -euo pipefail
          export PATH=${hostPath}
          # nix 2.8 sets NIX_ATTRS_JSON_FILE to the path outside the sandbox
          attrs=$NIX_BUILD_TOP/.attrs.json
          [ -e "$attrs" ] || attrs=$NIX_ATTRS_JSON_FILE
          exec python3 ${./closure-info.py} "$attrs"
        ''
      ];
    };

  fetchurl =
    {
      url,
      hash ? null,
      sha256 ? null,
      name ? baseNameOf url,
    }:
    if localImages ? ${url} then
      builtins.path {
        path = localImages.${url};
        inherit name;
      }
    else if anyImage != null then
      builtins.path {
        path = anyImage;
        inherit name;
      }
    else
      throw "stand-in fetchurl: no local file for ${url} (no network here; pass it in localImages)";
in
{
  inherit
    lib
    runCommand
    writeText
    writeShellApplication
    buildGoModule
    installShellFiles
    makeWrapper
    fetchurl
    virtiofsd
    closureInfo
    ;
  stdenv = {
    hostPlatform = {
      inherit system;
    };
    buildPlatform = {
      inherit system;
      canExecute = platform: platform.system == system;
    };
  };
  qemu = hostPackage "qemu" qemuPrograms;
  qemu_test = hostPackage "qemu-test" qemuPrograms;
  python3 = hostPackage "python3" [ "python3" ];
  # .override records its arguments (lib/outputs.nix asks for English only)
  tesseract = hostPackage "tesseract" [ "tesseract" ] // {
    override = args: hostPackage "tesseract" [ "tesseract" ] // { overriddenWith = args; };
  };
}
