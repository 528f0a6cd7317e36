//! The PyTorch check: a probe run by the venv's python with the child environment, and a pure
//! classifier that turns its output into one of the known ways torch fails to use the GPU.

use std::time::Duration;

use serde::Deserialize;

use super::gpu::GpuFacts;
use super::{last_line, output_within, Context, Verdict};
use crate::python::venv;

/// Importing torch and initializing CUDA can take a while on a cold cache.
const PROBE_TIMEOUT: Duration = Duration::from_secs(120);

/// Prints one JSON object; never raises (errors and warnings are reported in it).
const PROBE: &str = r#"
import json, warnings
out = {"warnings": []}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
        import torch
        out["version"] = torch.__version__
        out["cuda"] = torch.version.cuda
        out["available"] = bool(torch.cuda.is_available())
        if out["cuda"]:
            out["arch_list"] = list(torch.cuda.get_arch_list())
        if out["available"]:
            out["device"] = torch.cuda.get_device_name(0)
            out["capability"] = list(torch.cuda.get_device_capability(0))
            out["sum"] = float((torch.ones(4, device="cuda") * 2).sum().item())
    except BaseException as e:
        out["error"] = "%s: %s" % (type(e).__name__, e)
    out["warnings"] = [str(w.message) for w in caught]
print(json.dumps(out))
"#;

/// What the probe printed.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub(crate) struct Probe {
    /// `torch.__version__`.
    pub(crate) version: Option<String>,
    /// `torch.version.cuda` (`None`: a CPU-only build).
    pub(crate) cuda: Option<String>,
    /// `torch.cuda.is_available()`.
    #[serde(default)]
    pub(crate) available: bool,
    /// `torch.cuda.get_arch_list()`.
    #[serde(default)]
    pub(crate) arch_list: Vec<String>,
    /// Device 0's name.
    pub(crate) device: Option<String>,
    /// Device 0's compute capability.
    pub(crate) capability: Option<(u32, u32)>,
    /// The exception raised, if any.
    pub(crate) error: Option<String>,
    /// Warnings raised (torch reports CUDA initialization failures as warnings).
    #[serde(default)]
    pub(crate) warnings: Vec<String>,
}

/// How a probe run ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    /// It printed its JSON.
    Printed(Probe),
    /// Python itself failed (stderr).
    Crashed(String),
    /// It did not finish in time.
    TimedOut,
}

/// The check.
pub(crate) fn check(ctx: &Context) -> Verdict {
    if !venv::installed(&ctx.ws.config.python.venv).contains_key("torch") {
        return Verdict::skip("torch is not installed");
    }
    let outcome = match output_within(&ctx.venv_python(&["-c", PROBE]), PROBE_TIMEOUT) {
        Ok(None) => Outcome::TimedOut,
        Ok(Some(out)) => {
            let stdout = String::from_utf8_lossy(&out.stdout);
            match serde_json::from_str::<Probe>(last_line(&stdout)) {
                Ok(p) => Outcome::Printed(p),
                Err(_) => Outcome::Crashed(format!("{}\n{stdout}", String::from_utf8_lossy(&out.stderr))),
            }
        }
        Err(e) => Outcome::Crashed(format!("failed to run the venv's python: {e}")),
    };
    classify(&outcome, &ctx.gpu)
}

/// `sm_86` is served by `sm_86`, by `sm_80` (same major, lower minor) or by PTX `compute_XY` ≤ 8.6.
pub(crate) fn has_kernels(arch_list: &[String], (major, minor): (u32, u32)) -> bool {
    let parse = |digits: &str| -> Option<(u32, u32)> {
        let d: String = digits.chars().take_while(char::is_ascii_digit).collect();
        let (ma, mi) = d.split_at(d.len().checked_sub(1)?);
        Some((ma.parse().ok()?, mi.parse().ok()?))
    };
    arch_list.iter().any(|a| {
        if let Some(sm) = a.strip_prefix("sm_").and_then(parse) {
            sm.0 == major && sm.1 <= minor
        } else if let Some(ptx) = a.strip_prefix("compute_").and_then(parse) {
            ptx <= (major, minor)
        } else {
            false
        }
    })
}

/// The torch backend to ask for on a GPU of this capability (FACTS.md: cu128 dropped < 7.0,
/// cu126 has no Blackwell).
fn backend_for(capability: Option<(u32, u32)>) -> &'static str {
    match capability {
        Some((major, _)) if major < 7 => "cu126",
        Some((major, _)) if major >= 10 => "cu128",
        _ => "auto",
    }
}

/// The verdict from a probe's outcome and the host's GPU facts (pure).
pub(crate) fn classify(outcome: &Outcome, gpu: &GpuFacts) -> Verdict {
    let p = match outcome {
        Outcome::TimedOut => {
            return Verdict::fail(format!("the torch probe did not finish in {}s", PROBE_TIMEOUT.as_secs())).fix(
                "run `labup run -- python -c 'import torch; print(torch.cuda.is_available())'` to see where it hangs",
            )
        }
        Outcome::Crashed(text) => return classify_text(text, None, gpu),
        Outcome::Printed(p) => p,
    };
    let version = p.version.clone().unwrap_or_else(|| "?".into());
    if let Some(err) = &p.error {
        if p.version.is_none() {
            let v = classify_text(err, None, gpu);
            return if v.fix.is_some() { v } else { v.fix("reinstall torch: `labup sync`") };
        }
    }
    let text = p.warnings.iter().chain(&p.error).cloned().collect::<Vec<_>>().join("\n");
    if !gpu.present() {
        return match &p.cuda {
            None => Verdict::ok(format!("torch {version} (CPU build), no NVIDIA GPU here")),
            Some(c) => Verdict::ok(format!("torch {version} (CUDA {c}) runs on the CPU: no NVIDIA GPU here")),
        };
    }
    if p.cuda.is_none() {
        return Verdict::warn(format!("torch {version} is a CPU-only build on a machine with an NVIDIA GPU"))
            .fix("set `[python] torch = \"auto\"` (or a `cuNNN` backend) in labup.toml, then `labup sync`");
    }
    let cuda = p.cuda.clone().unwrap_or_default();
    if p.available && p.error.is_none() {
        if let Some(cap) = p.capability {
            if !p.arch_list.is_empty() && !has_kernels(&p.arch_list, cap) {
                return no_kernels(&version, &cuda, Some(cap), &p.arch_list);
            }
        }
        let device = p.device.clone().unwrap_or_else(|| "GPU".into());
        return Verdict::ok(format!("torch {version} (CUDA {cuda}) runs on {device}"));
    }
    classify_text(&text, Some((&version, &cuda, p)), gpu)
}

/// Sorts a failure by its text: torch's warnings and exceptions name the cause.
fn classify_text(text: &str, probe: Option<(&str, &str, &Probe)>, gpu: &GpuFacts) -> Verdict {
    let lower = text.to_lowercase();
    let what = probe.map_or_else(|| "torch".to_string(), |(v, c, _)| format!("torch {v} (CUDA {c})"));
    let first = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("no error text").to_string();
    if lower.contains("no kernel image is available") || lower.contains("is not compatible with the current pytorch") {
        let (version, cuda, cap, arch) = match probe {
            Some((v, c, p)) => (v, c, p.capability, p.arch_list.clone()),
            None => ("?", "?", None, Vec::new()),
        };
        return no_kernels(version, cuda, cap, &arch);
    }
    if lower.contains("driver/library version mismatch")
        || lower.contains("unsupported display driver / cuda driver combination")
    {
        return Verdict::fail(format!("{what}: the NVIDIA driver was updated without a reboot ({first})"))
            .fix("reboot");
    }
    if lower.contains("driver on your system is too old") {
        let driver = gpu.driver_version.clone().unwrap_or_else(|| "?".into());
        return Verdict::fail(format!("{what} needs a newer NVIDIA driver than {driver}"))
            .fix("update the driver, or set `[python] torch = \"auto\"` so labup picks a wheel this driver runs, then `labup sync`");
    }
    if lower.contains("stub library") {
        return Verdict::fail(format!("{what} loaded the CUDA toolkit's stub libcuda instead of the driver's")).fix(
            "remove the CUDA toolkit's `stubs` folder from LD_LIBRARY_PATH; labup links the real driver (`labup gpu`)",
        );
    }
    // cudart reports a libcuda it cannot load as "driver version is insufficient" too.
    let unreachable = (lower.contains("libcuda.so") && lower.contains("cannot open shared object"))
        || lower.contains("found no nvidia driver")
        || lower.contains("driver version is insufficient");
    if unreachable && gpu.present() {
        return match &gpu.link_dir {
            None => Verdict::fail(format!("{what} cannot find the NVIDIA driver: labup has not linked it yet"))
                .fix("labup up (or `labup gpu`), then start Python through labup (`labup run`, services)"),
            Some(dir) => Verdict::fail(format!(
                "{what} cannot load libcuda from the driver link folder {}",
                crate::config::display_path(dir)
            ))
            .fix("labup gpu, and start Python through labup (`labup run`, services) so it gets the link folder"),
        };
    }
    if let Some(lib) = super::python::missing_library(text) {
        return Verdict::fail(format!("{what} cannot load {lib}"))
            .fix(format!("{lib} comes from {}; see the wheel linkage check", super::nixpkgs::describe(&lib)));
    }
    Verdict::fail(format!("{what} cannot use the GPU: {first}"))
}

fn no_kernels(version: &str, cuda: &str, cap: Option<(u32, u32)>, arch: &[String]) -> Verdict {
    let sm = cap.map_or_else(|| "this GPU".to_string(), |(a, b)| format!("sm_{a}{b}"));
    let built = if arch.is_empty() { String::new() } else { format!(" (built for {})", arch.join(" ")) };
    Verdict::fail(format!("torch {version} (CUDA {cuda}) has no kernels for {sm}{built}"))
        .fix(format!("set `[python] torch = \"{}\"` in labup.toml, then `labup sync`", backend_for(cap)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    fn gpu() -> GpuFacts {
        GpuFacts {
            driver_version: Some("550.144.03".into()),
            source: "sysfs".into(),
            driver_dir: Some("/run/opengl-driver/lib".into()),
            ..GpuFacts::default()
        }
    }

    fn printed(json: &str) -> Outcome {
        Outcome::Printed(serde_json::from_str(json).unwrap())
    }

    /// Stub probe output: torch that works on an RTX 3090.
    const STUB_OK: &str = r#"{"version":"2.5.1+cu124","cuda":"12.4","available":true,"arch_list":["sm_50","sm_60","sm_70","sm_75","sm_80","sm_86","sm_90"],"device":"NVIDIA GeForce RTX 3090","capability":[8,6],"sum":8.0,"warnings":[]}"#;
    /// Stub probe output: a CPU-only wheel.
    const STUB_CPU_BUILD: &str = r#"{"version":"2.5.1+cpu","cuda":null,"available":false,"warnings":[]}"#;
    /// Stub probe output: libcuda not reachable (torch's warning when it cannot load the driver).
    const STUB_NO_DRIVER: &str = r#"{"version":"2.5.1+cu124","cuda":"12.4","available":false,"arch_list":["sm_80"],"warnings":["CUDA initialization: Found no NVIDIA driver on your system. Please check that you have an NVIDIA GPU and installed a driver from http://www.nvidia.com/Download/index.aspx"]}"#;
    /// Stub probe output: the CUDA toolkit's stub libcuda got loaded.
    const STUB_STUB_LIBCUDA: &str = r#"{"version":"2.5.1+cu124","cuda":"12.4","available":false,"warnings":["CUDA initialization: CUDA driver is a stub library (Triggered internally at ../c10/cuda/CUDAFunctions.cpp:108.)"]}"#;
    /// Stub probe output: a driver older than the wheel's CUDA.
    const STUB_OLD_DRIVER: &str = r#"{"version":"2.6.0+cu126","cuda":"12.6","available":false,"warnings":["CUDA initialization: The NVIDIA driver on your system is too old (found version 12020). Please update your GPU driver by downloading and installing a new version from the URL: http://www.nvidia.com/Download/index.aspx"]}"#;
    /// Stub probe output: driver updated without a reboot.
    const STUB_MISMATCH: &str = r#"{"version":"2.5.1+cu124","cuda":"12.4","available":false,"warnings":["CUDA initialization: Unexpected error from cudaGetDeviceCount(). Did you run some cuda functions before calling NumCudaDevices() that might have already set an error? Error 803: system has unsupported display driver / cuda driver combination"]}"#;
    /// Stub probe output: a Pascal GPU with a cu128 wheel (capability not in the arch list).
    const STUB_PASCAL: &str = r#"{"version":"2.7.0+cu128","cuda":"12.8","available":true,"arch_list":["sm_75","sm_80","sm_86","sm_90","sm_100","sm_120"],"device":"NVIDIA GeForce GTX 1080","capability":[6,1],"warnings":["NVIDIA GeForce GTX 1080 with CUDA capability sm_61 is not compatible with the current PyTorch installation."]}"#;
    /// Stub probe output: the kernel launch failed.
    const STUB_NO_KERNEL_IMAGE: &str = r#"{"version":"2.4.0+cu121","cuda":"12.1","available":true,"arch_list":[],"device":"NVIDIA B200","capability":[10,0],"error":"RuntimeError: CUDA error: no kernel image is available for execution on the device","warnings":[]}"#;
    /// Stub stderr: torch's import fails on libcuda (a build linked against it directly).
    const STUB_IMPORT_LIBCUDA: &str = "Traceback (most recent call last):\nOSError: libcuda.so.1: cannot open shared object file: No such file or directory";

    #[test]
    fn working_torch_is_ok() {
        let v = classify(&printed(STUB_OK), &gpu());
        assert_eq!(v.status, Status::Ok, "{v:?}");
        assert_eq!(v.message, "torch 2.5.1+cu124 (CUDA 12.4) runs on NVIDIA GeForce RTX 3090");
    }

    #[test]
    fn without_a_gpu_any_build_is_ok() {
        assert_eq!(classify(&printed(STUB_CPU_BUILD), &GpuFacts::default()).status, Status::Ok);
        assert_eq!(classify(&printed(STUB_NO_DRIVER), &GpuFacts::default()).status, Status::Ok);
    }

    #[test]
    fn cpu_build_on_a_gpu_machine_warns() {
        let v = classify(&printed(STUB_CPU_BUILD), &gpu());
        assert_eq!(v.status, Status::Warn);
        assert!(v.message.contains("CPU-only"));
    }

    #[test]
    fn unreachable_driver_points_at_the_link_folder() {
        let v = classify(&printed(STUB_NO_DRIVER), &gpu());
        assert_eq!(v.status, Status::Fail);
        assert!(v.message.contains("has not linked it yet"), "{}", v.message);
        let linked = GpuFacts { link_dir: Some("/p/.labup/driver/550.144.03".into()), ..gpu() };
        assert!(classify(&printed(STUB_NO_DRIVER), &linked).message.contains("driver link folder"));
        let v = classify(&Outcome::Crashed(STUB_IMPORT_LIBCUDA.into()), &gpu());
        assert!(v.message.contains("cannot find the NVIDIA driver"), "{}", v.message);
    }

    #[test]
    fn stub_libcuda_old_driver_and_mismatch() {
        assert!(classify(&printed(STUB_STUB_LIBCUDA), &gpu()).message.contains("stub libcuda"));
        let v = classify(&printed(STUB_OLD_DRIVER), &gpu());
        assert!(v.message.contains("needs a newer NVIDIA driver than 550.144.03"), "{}", v.message);
        assert_eq!(classify(&printed(STUB_MISMATCH), &gpu()).fix.as_deref(), Some("reboot"));
    }

    #[test]
    fn missing_kernels_suggest_a_backend() {
        let v = classify(&printed(STUB_PASCAL), &gpu());
        assert_eq!(v.status, Status::Fail);
        assert!(v.message.contains("no kernels for sm_61"), "{}", v.message);
        assert!(v.fix.unwrap().contains("cu126"));
        let v = classify(&printed(STUB_NO_KERNEL_IMAGE), &gpu());
        assert!(v.message.contains("no kernels for sm_100"), "{}", v.message);
        assert!(v.fix.unwrap().contains("cu128"));
    }

    #[test]
    fn timeouts_and_crashes_fail() {
        assert_eq!(classify(&Outcome::TimedOut, &gpu()).status, Status::Fail);
        let v = classify(&Outcome::Crashed("Segmentation fault".into()), &gpu());
        assert_eq!(v.message, "torch cannot use the GPU: Segmentation fault");
    }

    #[test]
    fn kernel_compatibility_rules() {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(has_kernels(&list(&["sm_80", "sm_90"]), (8, 6)), "same major, lower minor");
        assert!(!has_kernels(&list(&["sm_80", "sm_90"]), (7, 5)));
        assert!(has_kernels(&list(&["sm_90a", "compute_90"]), (12, 0)), "PTX is compiled for newer GPUs");
        assert!(!has_kernels(&list(&["sm_75", "sm_120"]), (6, 1)));
        assert!(has_kernels(&list(&["sm_100"]), (10, 3)));
    }
}
