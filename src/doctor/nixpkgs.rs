//! Which nixpkgs attribute provides a shared library PyPI wheels expect from the system.

/// What provides a library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Provider {
    /// A nixpkgs attribute (`zlib`, `stdenv.cc.cc.lib`).
    Nixpkgs(&'static str),
    /// The host's NVIDIA driver, wired by labup's GPU support.
    HostDriver,
}

/// Library name without its version (`libz.so.1.2.13` → `libz`) → provider.
const TABLE: &[(&str, Provider)] = &[
    // gcc's runtime libraries are all in its `lib` output.
    ("libstdc++", Provider::Nixpkgs("stdenv.cc.cc.lib")),
    ("libgcc_s", Provider::Nixpkgs("stdenv.cc.cc.lib")),
    ("libgomp", Provider::Nixpkgs("stdenv.cc.cc.lib")),
    ("libatomic", Provider::Nixpkgs("stdenv.cc.cc.lib")),
    ("libquadmath", Provider::Nixpkgs("stdenv.cc.cc.lib")),
    ("libgfortran", Provider::Nixpkgs("gfortran.cc.lib")),
    ("libz", Provider::Nixpkgs("zlib")),
    ("libGL", Provider::Nixpkgs("libGL")),
    ("libEGL", Provider::Nixpkgs("libGL")),
    ("libGLX", Provider::Nixpkgs("libGL")),
    ("libOpenGL", Provider::Nixpkgs("libGL")),
    ("libGLU", Provider::Nixpkgs("libGLU")),
    ("libglib-2.0", Provider::Nixpkgs("glib")),
    ("libgobject-2.0", Provider::Nixpkgs("glib")),
    ("libgthread-2.0", Provider::Nixpkgs("glib")),
    ("libgio-2.0", Provider::Nixpkgs("glib")),
    ("libgmodule-2.0", Provider::Nixpkgs("glib")),
    // nixpkgs 25.11 moved the X libraries out of `xorg` (`xorg.libX11` is now an alias).
    ("libX11", Provider::Nixpkgs("libx11")),
    ("libX11-xcb", Provider::Nixpkgs("libx11")),
    ("libXext", Provider::Nixpkgs("libxext")),
    ("libXrender", Provider::Nixpkgs("libxrender")),
    ("libXi", Provider::Nixpkgs("libxi")),
    ("libXrandr", Provider::Nixpkgs("libxrandr")),
    ("libXfixes", Provider::Nixpkgs("libxfixes")),
    ("libXcursor", Provider::Nixpkgs("libxcursor")),
    ("libXinerama", Provider::Nixpkgs("libxinerama")),
    ("libXau", Provider::Nixpkgs("libxau")),
    ("libSM", Provider::Nixpkgs("libsm")),
    ("libICE", Provider::Nixpkgs("libice")),
    ("libxcb", Provider::Nixpkgs("libxcb")),
    ("libxkbcommon", Provider::Nixpkgs("libxkbcommon")),
    ("libdrm", Provider::Nixpkgs("libdrm")),
    ("libgbm", Provider::Nixpkgs("libgbm")),
    ("libfontconfig", Provider::Nixpkgs("fontconfig.lib")),
    ("libfreetype", Provider::Nixpkgs("freetype")),
    ("libpng16", Provider::Nixpkgs("libpng")),
    ("libjpeg", Provider::Nixpkgs("libjpeg")),
    ("libdbus-1", Provider::Nixpkgs("dbus.lib")),
    ("libasound", Provider::Nixpkgs("alsa-lib")),
    ("libportaudio", Provider::Nixpkgs("portaudio")),
    ("libsndfile", Provider::Nixpkgs("libsndfile")),
    ("libffi", Provider::Nixpkgs("libffi")),
    ("libssl", Provider::Nixpkgs("openssl.out")),
    ("libcrypto", Provider::Nixpkgs("openssl.out")),
    ("libbz2", Provider::Nixpkgs("bzip2.out")),
    ("liblzma", Provider::Nixpkgs("xz.out")),
    ("libzstd", Provider::Nixpkgs("zstd.out")),
    ("libexpat", Provider::Nixpkgs("expat")),
    ("libuuid", Provider::Nixpkgs("libuuid.lib")),
    ("libsqlite3", Provider::Nixpkgs("sqlite.out")),
    ("libncursesw", Provider::Nixpkgs("ncurses")),
    ("libcrypt", Provider::Nixpkgs("libxcrypt")),
    ("libnuma", Provider::Nixpkgs("numactl")),
    ("libcurl", Provider::Nixpkgs("curl.out")),
    ("libcuda", Provider::HostDriver),
    ("libnvidia-ml", Provider::HostDriver),
    ("libnvidia-ptxjitcompiler", Provider::HostDriver),
    ("libcudadebugger", Provider::HostDriver),
    ("libdxcore", Provider::HostDriver),
];

/// The provider of a library, by soname (`libz.so.1` → `zlib`).
pub(crate) fn provider(soname: &str) -> Option<Provider> {
    let stem = soname.split(".so").next().unwrap_or(soname);
    TABLE.iter().find(|(name, _)| *name == stem).map(|(_, p)| *p)
}

/// `zlib`, `the NVIDIA driver`, or `unknown` for messages.
pub(crate) fn describe(soname: &str) -> String {
    match provider(soname) {
        Some(Provider::Nixpkgs(attr)) => format!("nixpkgs `{attr}`"),
        Some(Provider::HostDriver) => "the host NVIDIA driver (`labup gpu`)".into(),
        None => "no known nixpkgs attribute".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_the_libraries_wheels_need() {
        assert_eq!(provider("libstdc++.so.6"), Some(Provider::Nixpkgs("stdenv.cc.cc.lib")));
        assert_eq!(provider("libgcc_s.so.1"), Some(Provider::Nixpkgs("stdenv.cc.cc.lib")));
        assert_eq!(provider("libgomp.so.1"), Some(Provider::Nixpkgs("stdenv.cc.cc.lib")));
        assert_eq!(provider("libz.so.1"), Some(Provider::Nixpkgs("zlib")));
        assert_eq!(provider("libGL.so.1"), Some(Provider::Nixpkgs("libGL")));
        assert_eq!(provider("libglib-2.0.so.0"), Some(Provider::Nixpkgs("glib")));
        assert_eq!(provider("libX11.so.6"), Some(Provider::Nixpkgs("libx11")));
        assert_eq!(provider("libcuda.so.1"), Some(Provider::HostDriver));
        assert_eq!(provider("libmissing.so"), None);
        assert_eq!(provider("libzstd.so.1"), Some(Provider::Nixpkgs("zstd.out")), "stem match, not prefix");
    }

    #[test]
    fn describes_for_messages() {
        assert_eq!(describe("libz.so.1"), "nixpkgs `zlib`");
        assert!(describe("libcuda.so.1").contains("NVIDIA driver"));
        assert_eq!(describe("libfoo.so"), "no known nixpkgs attribute");
    }
}
