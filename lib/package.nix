# The Go binaries: distrotest (the runner) and distrotest-gen (build time),
# each built from only the sources it needs, so that a runner change does not
# rebuild distrotest-gen and with it every prepared image.
#
# distrotest is wrapped with what it executes (qemu-system-* and qemu-img
# from qemu_test, python3 for the test script, distrotest-gen for
# `run --image DISTRO/RELEASE`, virtiofsd for virtiofs shares), so
# `nix run .#distrotest` works on a host without any of them.
{
  lib,
  stdenv,
  buildGoModule,
  installShellFiles,
  makeWrapper,
  qemu_test,
  python3,
  # nixpkgs' virtiofsd (the Rust one, unprivileged with --sandbox=none);
  # null leaves virtiofs to a virtiofsd the host has
  virtiofsd ? null,
}:
let
  fs = lib.fileset;
  version = "0.1.0";

  # NAR hash of `go mod vendor` over the whole module; scripts/check-vendor-hash.sh
  # recomputes it and prints the new value when go.mod/go.sum or imports change.
  vendorHash = "sha256-7EiA0yKXmMQ2eqKVeCpgTFDdrMAqY5779ohJ1sWEnUE=";

  # cmd/internal packages only the runner imports: they stay out of
  # distrotest-gen's source. (The runner's source is everything: a change
  # that rebuilds distrotest-gen rebuilds every image, and so every test,
  # anyway.) scripts/check-nix.sh checks this list against `go list -deps`:
  # listing a package distrotest-gen imports breaks its build; leaving one out
  # only rebuilds images more often.
  runnerOnly = [
    "backdoor"
    "driver"
    "machine"
    "pybridge"
    "qemu"
    "qmp"
    "report"
    "vlan"
  ];

  # package distros embeds distros/*.hcl into both binaries
  distros = fs.fileFilter (
    file: (file.hasExt "go" && !lib.hasSuffix "_test.go" file.name) || file.hasExt "hcl"
  ) ../distros;

  internal = names: map (n: fs.maybeMissing (../cmd/internal + "/${n}")) names;
  goTests = fs.fileFilter (file: lib.hasSuffix "_test.go" file.name) ../cmd;

  notSources = fs.unions [
    (fs.maybeMissing ../.git)
    (fs.maybeMissing ../vendor)
  ];

  # What `go mod vendor` reads: go.mod, go.sum and every Go file (imports,
  # including those of tests), so the vendor directory equals a local
  # `go mod vendor` and one vendorHash serves both binaries.
  moduleSrc = fs.toSource {
    root = ../.;
    fileset = fs.difference (fs.unions [
      ../go.mod
      ../go.sum
      (fs.fileFilter (file: file.hasExt "go") ../.)
    ]) notSources;
  };

  # the patcher's build embeds no descriptions: its source must not change
  # when a .hcl does (it takes every fact from `image patch --spec`)
  distrosGo = fs.fileFilter (file: file.hasExt "go" && !lib.hasSuffix "_test.go" file.name) ../distros;

  binarySrc =
    pname: excluded: descriptions:
    fs.toSource {
      root = ../.;
      fileset = fs.difference (fs.unions [
        ../go.mod
        ../go.sum
        (../cmd + "/${pname}")
        ../cmd/internal
        (if descriptions then distros else distrosGo)
      ]) (fs.unions ([ goTests ] ++ internal excluded));
    };

  common = {
    inherit version vendorHash;
    # goModules is a fixed-output derivation: taking its source from the
    # whole module does not make a binary depend on the other one's code.
    overrideModAttrs = _: { src = moduleSrc; };
    env.CGO_ENABLED = "0";
    ldflags = [
      "-s"
      "-w"
    ];
  };

  binary =
    {
      pname,
      excluded,
      description,
      # programs the binary executes, put on its PATH by a wrapper
      runtimePrograms ? [ ],
      # false: built with -tags distrotest_noembed, without distros/*.hcl
      descriptions ? true,
    }:
    buildGoModule (
      common
      // {
        inherit pname;
        src = binarySrc pname excluded descriptions;
        subPackages = [ "cmd/${pname}" ];
        tags = lib.optional (!descriptions) "distrotest_noembed";
        # The Go tests run once, in checks.<system>.distrotest-go-test.
        doCheck = false;
        nativeBuildInputs = [ installShellFiles ] ++ lib.optional (runtimePrograms != [ ]) makeWrapper;
        postInstall =
          lib.optionalString (stdenv.buildPlatform.canExecute stdenv.hostPlatform) ''
            installShellCompletion --cmd ${pname} \
              --bash <("$out/bin/${pname}" completion bash) \
              --fish <("$out/bin/${pname}" completion fish) \
              --zsh <("$out/bin/${pname}" completion zsh)
          ''
          + lib.optionalString (runtimePrograms != [ ]) ''
            wrapProgram "$out/bin/${pname}" --prefix PATH : ${lib.makeBinPath runtimePrograms}
          '';
        meta = {
          inherit description;
          mainProgram = pname;
        };
      }
    );

  distrotest-gen = binary {
    pname = "distrotest-gen";
    excluded = runnerOnly;
    description = "distrotest's build-time tool: distro data to Nix, image build, inspect and patch";
  };
in
{
  inherit distrotest-gen;

  # distrotest-gen for lib/images.nix: the same program without the
  # embedded descriptions, so that editing one distros/*.hcl rebuilds only
  # the prepared images whose patchSpec (in gen/) changed.
  distrotest-patcher = binary {
    pname = "distrotest-gen";
    excluded = runnerOnly;
    descriptions = false;
    description = "distrotest-gen without embedded distro descriptions (image patch --spec), for prepared images";
  };

  distrotest = binary {
    pname = "distrotest";
    excluded = [ ];
    description = "Runs NixOS-style VM test scripts on Debian, Ubuntu, Fedora and Rocky images";
    runtimePrograms = [
      qemu_test
      python3
      distrotest-gen
    ]
    ++ lib.optional (virtiofsd != null) virtiofsd;
  };

  # `go test ./...` over the whole repository (VM tests skip: they need
  # DISTROTEST_VM_TESTS=1 and run from the VM checks instead).
  go-test = buildGoModule (
    common
    // {
      pname = "distrotest-go-test";
      name = "distrotest-go-test"; # the check's name, without a version
      src = fs.toSource {
        root = ../.;
        # everything but the Nix layer, whose changes do not affect Go tests
        fileset = fs.difference ../. (
          fs.unions [
            notSources
            ../lib
            ../flake.nix
            ../flake.lock
            (fs.maybeMissing ../lib.nix)
            (fs.maybeMissing ../tests/default.nix)
            (fs.maybeMissing ../tests/nix)
          ]
        );
      };
      nativeCheckInputs = [
        qemu_test
        python3
      ];
      doCheck = true;
    }
  );
}
