# `packages.<linux>.image`: an OCI image of one project, run by `labup up --foreground`.
# `nix build .#image` gives a script that streams the image; load it with
# `./result | podman load` (or `docker load`). Layers: the wrapped labup, the Python, uv,
# bash, coreutils and CA certificates (one store path per layer, shared between images),
# then the project's source copied to /workspace, writable by the image's user, where labup
# creates .venv and .labup.
{
  lib,
  dockerTools,
  bashInteractive,
  coreutils,
  cacert,
  uv,
  labup,
  python,
  # The project folder (a path), its name, and the fixed ports of its services.
  src,
  name,
  ports,
}:
let
  # Not root: Kubernetes' runAsNonRoot and rootless podman both expect it.
  uid = 1000;
  home = "/home/labup";
in
dockerTools.streamLayeredImage {
  name = "labup-${name}";
  tag = "latest";
  contents = [
    labup
    python
    uv
    bashInteractive
    coreutils
    cacert
  ];
  inherit uid;
  gid = uid;
  uname = "labup";
  gname = "labup";
  # Runs in the customisation layer's root; what it writes is owned by uid/gid above.
  extraCommands = ''
    mkdir -p workspace .${home} tmp etc usr/bin
    cp -r ${src}/. workspace/
    chmod -R u+w workspace .${home}
    chmod 1777 tmp
    ln -s ${coreutils}/bin/env usr/bin/env
    echo 'root:x:0:0:root:/root:/bin/bash' > etc/passwd
    echo 'labup:x:${toString uid}:${toString uid}:labup:${home}:/bin/bash' >> etc/passwd
    echo 'root:x:0:' > etc/group
    echo 'labup:x:${toString uid}:' >> etc/group
  '';
  config = {
    Entrypoint = [
      (lib.getExe labup)
      "up"
      "--foreground"
    ];
    WorkingDir = "/workspace";
    User = "${toString uid}:${toString uid}";
    ExposedPorts = lib.listToAttrs (map (port: lib.nameValuePair "${toString port}/tcp" { }) ports);
    Env = [
      "PATH=/bin"
      "HOME=${home}"
      "SSL_CERT_FILE=${cacert}/etc/ssl/certs/ca-bundle.crt"
      "LABUP_NO_BROWSER=1"
    ];
  };
}
