//! GPU wiring on fake hosts (`LABUP_FS_ROOT`): no GPU is reachable from the test machines, so
//! every host is a folder of empty files named and linked like a real distribution's.

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use crate::support::Project;

const DRIVER_LIBS: &[&str] = &["libcuda", "libnvidia-ml", "libnvidia-ptxjitcompiler", "libnvidia-nvvm"];

/// A fake host root next to a project that reads it.
struct Host {
    root: tempfile::TempDir,
}

impl Host {
    fn new() -> Host {
        Host { root: tempfile::Builder::new().prefix("labup-host-").tempdir().unwrap() }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.root.path().join(p.trim_start_matches('/'))
    }

    fn file(&self, p: &str, text: &str) -> &Host {
        let path = self.path(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        self
    }

    fn link(&self, p: &str, target: &str) -> &Host {
        let path = self.path(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        symlink(target, path).unwrap();
        self
    }

    /// Driver libraries as distributions install them: `libX.so.<version>` and `libX.so.1 -> it`.
    fn driver_libs(&self, dir: &str, version: &str, unversioned: bool) -> &Host {
        for stem in DRIVER_LIBS {
            self.file(&format!("{dir}/{stem}.so.{version}"), "");
            self.link(&format!("{dir}/{stem}.so.1"), &format!("{stem}.so.{version}"));
            if unversioned {
                self.link(&format!("{dir}/{stem}.so"), &format!("{stem}.so.1"));
            }
        }
        // Beside them, libraries that must never be linked.
        self.file(&format!("{dir}/libc.so.6"), "").file(&format!("{dir}/libcudart.so.12"), "");
        self.file(&format!("{dir}/libEGL_nvidia.so.{version}"), "")
    }

    fn ld_cache(&self, dir: &str) -> &Host {
        let mut entries: Vec<(String, String)> =
            DRIVER_LIBS.iter().map(|s| (format!("{s}.so.1"), format!("{dir}/{s}.so.1"))).collect();
        entries.push(("libc.so.6".into(), format!("{dir}/libc.so.6")));
        let refs: Vec<(&str, &str)> = entries.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let path = self.path("/etc/ld.so.cache");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, labup::testing::ld_cache(&refs)).unwrap();
        self
    }

    fn project(&self) -> Project {
        let mut p = Project::new();
        p.set("LABUP_FS_ROOT", self.root.path());
        p
    }
}

/// Every link in the driver folder: name → target.
fn links(dir: &Path) -> BTreeMap<String, PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().to_string_lossy().into_owned(), std::fs::read_link(e.path()).unwrap())
        })
        .collect()
}

/// The links expected for `stems`, each `.so` and `.so.1` to `<dir>/<stem>.so.<version>`.
fn expected(dir: &Path, stems: &[&str], version: &str) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    for s in stems {
        for name in [format!("{s}.so"), format!("{s}.so.1")] {
            out.insert(name, dir.join(format!("{s}.so.{version}")));
        }
    }
    out
}

/// The child's `LD_LIBRARY_PATH` as `labup env --json` gives it.
fn child_ld(p: &Project) -> Option<String> {
    let env = p.labup(&["env", "--json"]).ok().json();
    let entries = env["entries"].as_array().unwrap().clone();
    entries.iter().find(|e| e["name"] == "LD_LIBRARY_PATH").and_then(|e| e["value"].as_str().map(str::to_string))
}

fn gpu(p: &Project) -> serde_json::Value {
    p.labup(&["gpu", "--json"]).ok().json()
}

#[test]
fn ubuntu_driver_found_through_the_ld_cache() {
    let h = Host::new();
    let dir = "/usr/lib/x86_64-linux-gnu";
    h.driver_libs(dir, "550.144.03", true).ld_cache(dir).file("/sys/module/nvidia/version", "550.144.03\n");
    let p = h.project();
    let g = gpu(&p);
    assert_eq!(g["platform"], "linux");
    assert_eq!(g["driver_version"], "550.144.03");
    assert_eq!(g["source"], "sysfs");
    assert_eq!(g["cuda_max"], "12.4");
    assert_eq!(g["driver_dir"], h.path(dir).display().to_string());
    assert_eq!(g["layout"], "ld-cache");
    let link_dir = p.path(".labup/driver/550.144.03");
    assert_eq!(g["link_dir"], link_dir.display().to_string());
    assert_eq!(links(&link_dir), expected(&h.path(dir), DRIVER_LIBS, "550.144.03"));
    assert_eq!(g["torch_backend"], "cu124");
    assert_eq!(child_ld(&p), Some(link_dir.display().to_string()));
}

#[test]
fn ubuntu_with_a_cached_nvml_answer_uses_the_compute_capability() {
    let h = Host::new();
    let dir = "/usr/lib/x86_64-linux-gnu";
    h.driver_libs(dir, "580.95.05", true).ld_cache(dir).file("/sys/module/nvidia/version", "580.95.05\n");
    h.file("/proc/sys/kernel/random/boot_id", "boot-a\n");
    let p = h.project();
    let probe = serde_json::json!({
        "key": {"boot_id": "boot-a", "driver_version": "580.95.05",
                "library": h.path(dir).join("libnvidia-ml.so.580.95.05")},
        "driver_version": "580.95.05",
        "devices": [{"index": 0, "name": "Tesla P100-PCIE-16GB", "memory_mib": 16384,
                     "compute_capability": "6.0", "uuid": "GPU-p100"}]
    });
    p.file(".labup/gpu/nvml.json", &probe.to_string());
    let g = gpu(&p);
    assert_eq!(g["devices"][0]["name"], "Tesla P100-PCIE-16GB");
    assert_eq!(g["devices"][0]["compute_capability"], "6.0");
    assert_eq!(g["torch_backend"], "cu126", "Pascal has no kernels in cu128 and later: {}", g["reason"]);
    // Another boot: the cached answer no longer counts, and NVML is never loaded on a fake root.
    h.file("/proc/sys/kernel/random/boot_id", "boot-b\n");
    let g = gpu(&p);
    assert_eq!(g["devices"], serde_json::json!([]));
    assert_eq!(g["torch_backend"], "cu130");
}

#[test]
fn fedora_without_unversioned_names_from_procfs() {
    let h = Host::new();
    let dir = "/usr/lib64";
    h.driver_libs(dir, "570.133.07", false).ld_cache(dir);
    h.file(
        "/proc/driver/nvidia/version",
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  570.133.07  Release Build  (builder)  Date\n",
    );
    let p = h.project();
    let g = gpu(&p);
    assert_eq!(g["driver_version"], "570.133.07");
    assert_eq!(g["source"], "procfs");
    assert_eq!(g["driver_dir"], h.path(dir).display().to_string());
    let link_dir = p.path(".labup/driver/570.133.07");
    assert_eq!(links(&link_dir), expected(&h.path(dir), DRIVER_LIBS, "570.133.07"), "`.so` names are added");
    assert_eq!(g["torch_backend"], "cu128");
    assert_eq!(child_ld(&p), Some(link_dir.display().to_string()));
}

#[test]
fn nixos_opengl_driver_with_store_links() {
    let h = Host::new();
    let store = "/nix/store/aaaa-nvidia-x11-565.77/lib";
    h.file("/etc/NIXOS", "").file("/sys/module/nvidia/version", "565.77\n");
    for s in DRIVER_LIBS {
        h.file(&format!("{store}/{s}.so.565.77"), "");
        // NixOS links absolute store paths; labup follows them under the fake root.
        h.link(&format!("/run/opengl-driver/lib/{s}.so.1"), &format!("{store}/{s}.so.565.77"));
    }
    h.link("/run/opengl-driver/lib/libGL.so.1", &format!("{store}/libGL.so.1"));
    let p = h.project();
    let g = gpu(&p);
    assert_eq!(g["platform"], "nixos");
    assert_eq!(g["layout"], "nixos");
    assert_eq!(g["driver_version"], "565.77");
    assert_eq!(g["driver_dir"], h.path("/run/opengl-driver/lib").display().to_string());
    let link_dir = p.path(".labup/driver/565.77");
    assert_eq!(links(&link_dir), expected(&h.path(store), DRIVER_LIBS, "565.77"));
    assert_eq!(g["torch_backend"], "cu126");
    assert_eq!(child_ld(&p), Some(link_dir.display().to_string()));
}

#[test]
fn wsl2_libraries_without_version_suffix_and_the_version_from_the_nvml_cache() {
    let h = Host::new();
    let lib = "/usr/lib/wsl/lib";
    h.file("/dev/dxg", "").file("/proc/sys/kernel/random/boot_id", "wsl-boot\n");
    for f in ["libcuda.so.1.1", "libnvidia-ml.so.1", "libdxcore.so", "libd3d12.so", "nvidia-smi"] {
        h.file(&format!("{lib}/{f}"), "");
    }
    h.link(&format!("{lib}/libcuda.so.1"), "libcuda.so.1.1").link(&format!("{lib}/libcuda.so"), "libcuda.so.1");
    let p = h.project();
    // Without a cached answer (and no NVML on a fake root) the version is unknown.
    let out = p.labup(&["gpu", "--json"]).ok();
    assert!(out.stderr.contains("the WSL2 driver version is unknown"), "{}", out.stderr);
    assert_eq!(out.json()["link_dir"], p.path(".labup/driver/wsl").display().to_string());
    let probe = serde_json::json!({
        "key": {"boot_id": "wsl-boot", "driver_version": null, "library": h.path(lib).join("libnvidia-ml.so.1")},
        "driver_version": "576.02",
        "devices": [{"index": 0, "name": "NVIDIA GeForce RTX 4090", "memory_mib": 24564,
                     "compute_capability": "8.9", "uuid": "GPU-4090"}]
    });
    p.file(".labup/gpu/nvml.json", &probe.to_string());
    let g = gpu(&p);
    assert_eq!(g["platform"], "wsl");
    assert_eq!(g["layout"], "wsl");
    assert_eq!(g["driver_version"], "576.02");
    assert_eq!(g["source"], "nvml");
    assert_eq!(g["driver_dir"], h.path(lib).display().to_string());
    let link_dir = p.path(".labup/driver/576.02");
    let l = h.path(lib);
    let want: BTreeMap<String, PathBuf> = [
        ("libcuda.so", l.join("libcuda.so.1.1")),
        ("libcuda.so.1", l.join("libcuda.so.1.1")),
        ("libnvidia-ml.so", l.join("libnvidia-ml.so.1")),
        ("libnvidia-ml.so.1", l.join("libnvidia-ml.so.1")),
        ("libdxcore.so", l.join("libdxcore.so")),
        ("libdxcore.so.1", l.join("libdxcore.so")),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b))
    .collect();
    assert_eq!(links(&link_dir), want);
    assert!(!p.path(".labup/driver/wsl").exists(), "the folder of the unknown version is pruned");
    assert_eq!(g["torch_backend"], "cu129");
    assert_eq!(child_ld(&p), Some(link_dir.display().to_string()));
}

#[test]
fn no_gpu_wires_nothing_and_picks_cpu() {
    let h = Host::new();
    h.file("/etc/ld.so.cache", "");
    let mut p = h.project();
    p.set("LD_LIBRARY_PATH", "/usr/lib/x86_64-linux-gnu");
    let g = gpu(&p);
    assert_eq!(g["driver_version"], serde_json::Value::Null);
    assert_eq!(g["source"], "none");
    assert_eq!(g["link_dir"], serde_json::Value::Null);
    assert_eq!(g["torch_backend"], "cpu");
    assert_eq!(child_ld(&p), None, "the inherited value is not passed on");
    assert!(!p.path(".labup/driver").exists());
    p.file("labup.toml", "[gpu]\ncuda = \"on\"\n");
    p.labup(&["run", "--no-sync", "--", "true"])
        .code(1)
        .stderr_has("`[gpu] cuda = \"on\"` but the GPU cannot be wired");
}

#[test]
fn driver_updated_without_reboot_links_nothing_and_says_reboot() {
    let h = Host::new();
    let dir = "/usr/lib/x86_64-linux-gnu";
    h.driver_libs(dir, "550.163.01", true).ld_cache(dir).file("/sys/module/nvidia/version", "550.144.03\n");
    let mut p = h.project();
    p.set("LABUP_LIBRARY_PATH", "/nix/store/x-gcc-lib/lib");
    let out = p.labup(&["gpu", "--json"]).ok();
    assert!(out.stderr.contains("reboot"), "{}", out.stderr);
    assert!(out.stderr.contains("libcuda.so.550.163.01"), "{}", out.stderr);
    let g = out.json();
    assert_eq!(g["driver_version"], "550.144.03");
    assert_eq!(g["link_dir"], serde_json::Value::Null);
    assert_eq!(g["torch_backend"], "cu124");
    assert!(!p.path(".labup/driver/550.144.03").exists());
    assert_eq!(child_ld(&p).as_deref(), Some("/nix/store/x-gcc-lib/lib"));
}

#[test]
fn stale_libraries_of_an_older_driver_are_left_out() {
    let h = Host::new();
    let dir = "/usr/lib/x86_64-linux-gnu";
    for s in DRIVER_LIBS {
        h.file(&format!("{dir}/{s}.so.535.183.01"), "");
    }
    h.driver_libs(dir, "550.144.03", true).ld_cache(dir).file("/sys/module/nvidia/version", "550.144.03\n");
    let p = h.project();
    let g = gpu(&p);
    let link_dir = p.path(".labup/driver/550.144.03");
    assert_eq!(links(&link_dir), expected(&h.path(dir), DRIVER_LIBS, "550.144.03"));
    assert_eq!(g["torch_backend"], "cu124");
    assert_eq!(child_ld(&p), Some(link_dir.display().to_string()));
}

#[test]
fn override_and_driver_dirs_from_the_environment() {
    let h = Host::new();
    let elsewhere = tempfile::tempdir().unwrap();
    let dir = elsewhere.path().join("nvidia");
    for s in DRIVER_LIBS {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{s}.so.575.64.05")), "").unwrap();
    }
    let mut p = h.project();
    p.set("LABUP_CUDA_DRIVER_VERSION", "575.64.05").set("LABUP_DRIVER_DIRS", &dir);
    let g = gpu(&p);
    assert_eq!(g["source"], "override");
    assert_eq!(g["layout"], "configured");
    assert_eq!(g["driver_dir"], dir.display().to_string());
    assert_eq!(links(&p.path(".labup/driver/575.64.05")), expected(&dir, DRIVER_LIBS, "575.64.05"));
    assert_eq!(g["torch_backend"], "cu129");
    let text = p.labup(&["gpu"]).ok().stdout;
    assert!(text.contains("driver         575.64.05 (from override), CUDA ≤ 12.9\n"), "{text}");
}

#[test]
fn run_gives_the_child_exactly_our_library_path_and_leaves_the_parent_alone() {
    let h = Host::new();
    let dir = "/usr/lib/x86_64-linux-gnu";
    h.driver_libs(dir, "550.144.03", true).ld_cache(dir).file("/sys/module/nvidia/version", "550.144.03\n");
    let mut p = h.project();
    p.file("labup.toml", "");
    p.set("LABUP_LIBRARY_PATH", "/nix/store/a-gcc-lib/lib:/nix/store/b-zlib/lib")
        .set("LD_LIBRARY_PATH", "/usr/local/cuda/lib64");
    let before = std::env::var_os("LD_LIBRARY_PATH");
    let out = p.labup(&["run", "--", "python", "-c", "import os; print(os.environ.get('LD_LIBRARY_PATH'))"]).ok();
    let want =
        format!("/nix/store/a-gcc-lib/lib:/nix/store/b-zlib/lib:{}", p.path(".labup/driver/550.144.03").display());
    assert_eq!(out.stdout.trim(), want);
    assert_eq!(std::env::var_os("LD_LIBRARY_PATH"), before, "the test process's environment is unchanged");
    let explained = p.labup(&["env", "--explain"]).ok().stdout;
    assert!(explained.contains("NVIDIA driver 550.144.03 libraries (libcuda, libnvidia-ml"), "{explained}");
    assert!(explained.contains("found in /etc/ld.so.cache"), "{explained}");
    assert!(explained.contains("your own LD_LIBRARY_PATH (/usr/local/cuda/lib64) is not passed on"), "{explained}");
}

/// A PEP 503 "simple" index as static files (`<dir>/<name>/index.html` linking the wheel with its
/// sha256), serving a named stub `torch` wheel: no network, real uv and pip read it by file URL.
fn torch_index(dir: &Path) -> String {
    let files = dir.join("files");
    let script = format!(
        "import sys, hashlib; sys.path.insert(0, {fixtures:?}); import make_wheels\n\
         make_wheels.wheel({files:?}, 'torch', '2.0.0')\n\
         w = {files:?} + '/torch-2.0.0-py3-none-any.whl'\n\
         h = hashlib.sha256(open(w, 'rb').read()).hexdigest()\n\
         import os; os.makedirs({index:?}, exist_ok=True)\n\
         open({index:?} + '/index.html', 'w').write('<a href=\"file://' + w + '#sha256=' + h + '\">torch-2.0.0-py3-none-any.whl</a>')\n",
        fixtures = crate::support::shared().fixtures.display().to_string(),
        files = files.display().to_string(),
        index = dir.join("torch").display().to_string(),
    );
    std::fs::create_dir_all(&files).unwrap();
    let out = std::process::Command::new(&crate::support::shared().python).args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    format!("file://{}", dir.display())
}

#[test]
fn torch_comes_from_the_index_the_requirements_name() {
    // No GPU (cpu would be download.pytorch.org/whl/cpu), but requirements.txt names its index.
    let h = Host::new();
    let mut p = h.project();
    let index = torch_index(&p.path("simple"));
    p.file("requirements.txt", &format!("--index-url {index}\ntorch\n"));
    let plan = p.labup(&["sync", "--dry-run", "--json"]).ok().json();
    let said = plan["torch_index"].as_str().unwrap_or_default().to_string();
    assert!(said.contains("--index-url") && said.contains("requirements.txt"), "{plan}");
    let out = p.labup(&["sync"]).ok();
    assert!(out.stderr.contains("torch from your own index"), "{}", out.stderr);
    assert_eq!(p.installed().get("torch").map(String::as_str), Some("2.0.0"));
    // uv's own index settings count the same.
    std::fs::write(p.path("requirements.txt"), "torch\n").unwrap();
    p.set("UV_INDEX_URL", &index);
    let plan = p.labup(&["sync", "--dry-run", "--json"]).ok().json();
    assert!(plan["torch_index"].as_str().unwrap_or_default().contains("UV_INDEX_URL"), "{plan}");
    p.labup(&["sync"]).ok();
    assert_eq!(p.installed().get("torch").map(String::as_str), Some("2.0.0"));
}

#[test]
fn torch_index_names_a_mirror_of_the_pytorch_index() {
    let h = Host::new();
    let p = h.project();
    let mirror = p.path("mirror");
    let base = torch_index(&mirror.join("cpu"));
    let base = base.trim_end_matches("/cpu").to_string();
    p.file("labup.toml", &format!("[python]\ntorch-index = \"{base}\"\n"));
    p.file("requirements.txt", "torch\n");
    let g = gpu(&p);
    assert_eq!(g["torch_backend"], "cpu");
    assert_eq!(g["torch_index"], format!("{base}/cpu"));
    let text = p.labup(&["gpu"]).ok().stdout;
    assert!(text.contains(&format!("torch index    {base}/cpu")), "{text}");
    let plan = p.labup(&["sync", "--dry-run"]).ok().stdout;
    assert!(plan.contains(&format!("torch: cpu from {base}/cpu")), "{plan}");
    p.labup(&["sync"]).ok();
    assert_eq!(p.installed().get("torch").map(String::as_str), Some("2.0.0"));
    assert!(p.path("requirements.cpu.lock").is_file());
}

#[test]
fn torch_pypi_takes_pypis_own_wheels_and_bad_index_values_are_refused() {
    let h = Host::new();
    let p = h.project();
    p.file("labup.toml", "[python]\ntorch = \"pypi\"\n");
    p.file("requirements.txt", "torch\n");
    let g = gpu(&p);
    assert_eq!(g["torch_backend"], "pypi");
    assert!(g["torch_index"].as_str().unwrap().contains("PyPI"), "{g}");
    let plan = p.labup(&["sync", "--dry-run", "--json"]).ok().json();
    assert_eq!(plan["torch_backend"], "pypi");
    p.file("labup.toml", "[python]\ntorch = \"pypi\"\ntorch-index = \"mirror.example/whl\"\n");
    let before = p.listing();
    p.labup(&["sync"]).code(2).stderr_has("labup.toml:3:").stderr_has("torch-index");
    assert_eq!(p.listing(), before, "nothing written");
}

/// A GKE-style GPU pod: the driver mounted at `/usr/local/nvidia/lib64` with `nvidia-smi` in
/// `/usr/local/nvidia/bin`, the image's own ld cache knowing nothing of it, and the runtime's
/// `LD_LIBRARY_PATH` pointing there (which labup replaces by its link folder).
fn gke_pod(h: &Host, version: &str) {
    h.driver_libs("/usr/local/nvidia/lib64", version, true);
    h.file("/usr/local/nvidia/bin/nvidia-smi", "").file("/var/run/secrets/kubernetes.io/serviceaccount/token", "x");
    h.file("/usr/lib/x86_64-linux-gnu/libc.so.6", "");
    let path = h.path("/etc/ld.so.cache");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, labup::testing::ld_cache(&[("libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6")])).unwrap();
}

#[test]
fn gke_pod_driver_in_usr_local_nvidia_without_an_ld_cache_entry() {
    let h = Host::new();
    gke_pod(&h, "550.90.07");
    h.file("/proc/driver/nvidia/version", "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.90.07  Release Build\n");
    let mut p = h.project();
    p.set("LD_LIBRARY_PATH", "/usr/local/nvidia/lib64");
    let g = gpu(&p);
    assert_eq!(g["layout"], "usr-local-nvidia");
    assert_eq!(g["source"], "procfs");
    let dir = h.path("/usr/local/nvidia/lib64");
    assert_eq!(g["driver_dir"], dir.display().to_string());
    assert_eq!(g["nvidia_smi"], h.path("/usr/local/nvidia/bin/nvidia-smi").display().to_string());
    let link_dir = p.path(".labup/driver/550.90.07");
    assert_eq!(links(&link_dir), expected(&dir, DRIVER_LIBS, "550.90.07"));
    assert_eq!(g["torch_backend"], "cu124");
    assert_eq!(child_ld(&p), Some(link_dir.display().to_string()), "linked as on any host");
    let text = p.labup(&["gpu"]).ok().stdout;
    assert!(text.contains(&format!("driver libs    {} (layout usr-local-nvidia)", dir.display())), "{text}");
    let explained = p.labup(&["env", "--explain"]).ok().stdout;
    assert!(explained.contains("/usr/local/nvidia/lib64, mounted by the container runtime"), "{explained}");
}

#[test]
fn a_container_that_sees_no_kernel_module_files_reads_the_version_from_libcuda() {
    // The GPU machine lent to some sessions: `/usr/local/nvidia` read-only, no sysfs/procfs files.
    let h = Host::new();
    gke_pod(&h, "580.82.07");
    let p = h.project();
    let g = gpu(&p);
    assert_eq!(g["driver_version"], "580.82.07");
    assert_eq!(g["source"], "library");
    assert_eq!(g["layout"], "usr-local-nvidia");
    assert_eq!(g["cuda_max"], "13.0");
    let link_dir = p.path(".labup/driver/580.82.07");
    assert_eq!(links(&link_dir), expected(&h.path("/usr/local/nvidia/lib64"), DRIVER_LIBS, "580.82.07"));
    let doctor = p.labup(&["doctor", "--json"]).json();
    let check = doctor["checks"].as_array().unwrap().iter().find(|c| c["id"] == "gpu").unwrap().clone();
    assert_eq!(check["status"], "ok", "{check}");
    assert!(check["message"].as_str().unwrap().contains("NVIDIA driver 580.82.07"), "{check}");
    // Two versions side by side: the name tells nothing, and nothing is guessed.
    h.file("/usr/local/nvidia/lib64/libcuda.so.575.1.2", "");
    assert_eq!(gpu(&p)["driver_version"], serde_json::Value::Null);
}

#[test]
fn container_toolkit_injection_found_through_the_containers_ld_cache() {
    let h = Host::new();
    let dir = "/usr/lib/x86_64-linux-gnu";
    h.driver_libs(dir, "570.133.20", false).ld_cache(dir).file("/.dockerenv", "");
    h.file("/proc/driver/nvidia/version", "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.133.20  x\n");
    let p = h.project();
    let g = gpu(&p);
    assert_eq!(g["layout"], "container-toolkit");
    assert_eq!(g["driver_dir"], h.path(dir).display().to_string());
    let link_dir = p.path(".labup/driver/570.133.20");
    assert_eq!(links(&link_dir), expected(&h.path(dir), DRIVER_LIBS, "570.133.20"));
    assert_eq!(child_ld(&p), Some(link_dir.display().to_string()));
    // The same under podman (CDI: `--device nvidia.com/gpu=all`), marked by /run/.containerenv.
    let h = Host::new();
    h.driver_libs(dir, "570.133.20", true).ld_cache(dir).file("/run/.containerenv", "");
    h.file("/sys/module/nvidia/version", "570.133.20\n");
    assert_eq!(gpu(&h.project())["layout"], "container-toolkit");
}

/// `bench/gpu-device.sh`, the script for the GPU machine, in its dry run on a fake root shaped
/// like that machine (driver at /usr/local/nvidia, no kernel module files): the real script and
/// labup, with the local interpreter standing in for torch's and no CUDA computation.
#[test]
fn gpu_device_script_dry_run_on_a_fake_gpu_machine() {
    let h = Host::new();
    gke_pod(&h, "580.82.07");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/gpu-device.sh");
    let s = crate::support::shared();
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg("--fake-root")
        .arg(h.root.path())
        .args(["--labup", env!("CARGO_BIN_EXE_labup")])
        .arg("--torch-python")
        .arg(&s.python)
        .arg("--uv")
        .arg(&s.uv)
        .env_remove("LABUP_FS_ROOT")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("  driver            580.82.07 (from library), CUDA <= 13.0\n"), "{stdout}");
    let lib = h.path("/usr/local/nvidia/lib64");
    assert!(stdout.contains(&format!("  layout            usr-local-nvidia ({})\n", lib.display())), "{stdout}");
    assert!(stdout.contains(&format!("  nvidia-smi        {}\n", h.path("/usr/local/nvidia/bin/nvidia-smi").display())));
    assert!(stdout.contains("  torch index       cu130: "), "{stdout}");
    let link = stdout.lines().find_map(|l| l.strip_prefix("  link folder       ")).unwrap();
    assert!(link.ends_with("project/.labup/driver/580.82.07"), "{stdout}");
    assert!(stdout.contains("gpu ok"), "the doctor's verdict: {stdout}");
    assert!(stdout.contains(&format!("  child LD path     {link}")), "{stdout}");
}
