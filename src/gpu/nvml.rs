//! NVML (through nvml-wrapper) for the device list, and for the driver version where the kernel
//! module's files are missing (WSL2). Its answer is cached in the state folder, keyed by boot id,
//! driver version and library, because initialising NVML can take seconds.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use nvml_wrapper::error::NvmlError;
use nvml_wrapper::Nvml;
use serde::{Deserialize, Serialize};

use super::Host;
use crate::error::Fail;
use crate::fsutil;

/// One GPU as `labup gpu --json` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Device {
    /// NVML's index.
    pub(crate) index: u32,
    /// Marketing name.
    pub(crate) name: String,
    /// Total memory.
    pub(crate) memory_mib: u64,
    /// `major.minor`, e.g. `8.6`.
    pub(crate) compute_capability: String,
    /// `GPU-…`.
    pub(crate) uuid: String,
}

impl Device {
    /// The compute capability as numbers.
    pub(crate) fn capability(&self) -> Option<(u32, u32)> {
        let (a, b) = self.compute_capability.split_once('.')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    }
}

/// What the cached answer is valid for: a reboot, a driver update or another library voids it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Key {
    /// `/proc/sys/kernel/random/boot_id`.
    pub(crate) boot_id: String,
    /// The version the kernel module's files give (`None` on WSL2).
    pub(crate) driver_version: Option<String>,
    /// The `libnvidia-ml` file NVML is loaded from.
    pub(crate) library: PathBuf,
}

/// NVML's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Probe {
    /// What it is valid for.
    pub(crate) key: Key,
    /// `nvmlSystemGetDriverVersion`.
    pub(crate) driver_version: String,
    /// Every device.
    pub(crate) devices: Vec<Device>,
}

/// The cache key for this boot, driver and library.
pub(crate) fn key(host: &Host, driver_version: Option<&str>, library: &Path) -> Key {
    let boot_id = std::fs::read_to_string(host.path("/proc/sys/kernel/random/boot_id")).unwrap_or_default();
    Key {
        boot_id: boot_id.trim().to_string(),
        driver_version: driver_version.map(str::to_string),
        library: library.into(),
    }
}

/// The cached answer, when it is for `key`.
pub(crate) fn cached(file: &Path, key: &Key) -> Option<Probe> {
    let probe: Probe = serde_json::from_slice(&std::fs::read(file).ok()?).ok()?;
    (!key.boot_id.is_empty() && probe.key == *key).then_some(probe)
}

/// The cached answer, else NVML's (then cached). Under a fake root NVML is never loaded: its
/// libraries there are empty files.
pub(crate) fn probe(host: &Host, key: Key, cache: &Path) -> Result<Probe, Fail> {
    if let Some(p) = cached(cache, &key) {
        return Ok(p);
    }
    if host.root().is_some() {
        return Err(Fail::new("NVML is not loaded under LABUP_FS_ROOT (a test root) and no cached answer matches"));
    }
    let nvml = Nvml::builder().lib_path(OsStr::new(&key.library)).init().map_err(|e| explain(&e, &key.library))?;
    let driver_version = nvml.sys_driver_version().map_err(|e| explain(&e, &key.library))?;
    let count = nvml.device_count().map_err(|e| explain(&e, &key.library))?;
    let mut devices = Vec::new();
    for index in 0..count {
        let d = nvml.device_by_index(index).map_err(|e| explain(&e, &key.library))?;
        let cc = d.cuda_compute_capability().map_err(|e| explain(&e, &key.library))?;
        devices.push(Device {
            index,
            name: d.name().unwrap_or_default(),
            memory_mib: d.memory_info().map(|m| m.total / (1024 * 1024)).unwrap_or(0),
            compute_capability: format!("{}.{}", cc.major, cc.minor),
            uuid: d.uuid().unwrap_or_default(),
        });
    }
    let probe = Probe { key, driver_version, devices };
    if let Ok(json) = serde_json::to_vec_pretty(&probe) {
        // A cache that cannot be written only costs the next run another NVML start.
        let _ = cache.parent().map(std::fs::create_dir_all);
        let _ = fsutil::atomic_write(cache, &json);
    }
    Ok(probe)
}

/// Every NVML error as a sentence with what to do.
pub(crate) fn explain(err: &NvmlError, library: &Path) -> Fail {
    let lib = library.display();
    match err {
        NvmlError::LibRmVersionMismatch => Fail::new(
            "the NVIDIA driver was updated but the old kernel module is still loaded (driver/library version mismatch)",
        )
        .hint("reboot to load the new driver"),
        NvmlError::DriverNotLoaded => Fail::new("the NVIDIA kernel driver is not loaded")
            .hint("load it (`sudo modprobe nvidia`) or reboot; on WSL2 update the Windows NVIDIA driver"),
        NvmlError::LibloadingError(e) => Fail::new(format!("cannot load NVML from {lib}: {e}"))
            .hint("reinstall the NVIDIA driver's user-space libraries, or point LABUP_DRIVER_DIRS at them"),
        NvmlError::LibraryNotFound | NvmlError::FunctionNotFound | NvmlError::FailedToLoadSymbol(_) => {
            Fail::new(format!("{lib} is not a usable NVML library ({err})"))
                .hint("reinstall the NVIDIA driver's user-space libraries, or point LABUP_DRIVER_DIRS at them")
        }
        NvmlError::NoPermission => Fail::new("no permission to query the NVIDIA driver")
            .hint("check the permissions of /dev/nvidia* (is your user in the `video` group?)"),
        NvmlError::GpuLost => Fail::new("a GPU fell off the bus").hint("check `dmesg`, then reboot"),
        other => Fail::new(format!("NVML failed: {other}")).hint("run `nvidia-smi` to see whether the driver works"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> Device {
        Device {
            index: 0,
            name: "NVIDIA GeForce RTX 3090".into(),
            memory_mib: 24576,
            compute_capability: "8.6".into(),
            uuid: "GPU-1".into(),
        }
    }

    #[test]
    fn errors_become_sentences_with_hints() {
        let lib = Path::new("/run/opengl-driver/lib/libnvidia-ml.so.1");
        let m = explain(&NvmlError::LibRmVersionMismatch, lib);
        assert!(m.message.contains("driver/library version mismatch"));
        assert_eq!(m.hint.as_deref(), Some("reboot to load the new driver"));
        assert!(explain(&NvmlError::DriverNotLoaded, lib).message.contains("not loaded"));
        let missing = explain(&NvmlError::LibraryNotFound, lib);
        assert!(missing.message.contains("/run/opengl-driver/lib/libnvidia-ml.so.1"), "{}", missing.message);
        assert!(explain(&NvmlError::Unknown, lib).hint.unwrap().contains("nvidia-smi"));
    }

    #[test]
    fn cache_is_keyed_by_boot_driver_and_library() {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::fake(dir.path());
        std::fs::create_dir_all(dir.path().join("proc/sys/kernel/random")).unwrap();
        std::fs::write(dir.path().join("proc/sys/kernel/random/boot_id"), "boot-1\n").unwrap();
        let k = key(&host, Some("550.144.03"), Path::new("/l/libnvidia-ml.so.1"));
        assert_eq!(k.boot_id, "boot-1");
        let file = dir.path().join("state/gpu/nvml.json");
        assert!(probe(&host, k.clone(), &file).unwrap_err().message.contains("LABUP_FS_ROOT"));
        let p = Probe { key: k.clone(), driver_version: "550.144.03".into(), devices: vec![device()] };
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, serde_json::to_vec(&p).unwrap()).unwrap();
        assert_eq!(probe(&host, k.clone(), &file).unwrap(), p);
        let rebooted = Key { boot_id: "boot-2".into(), ..k.clone() };
        assert_eq!(cached(&file, &rebooted), None);
        let updated = Key { driver_version: Some("560.28.03".into()), ..k };
        assert_eq!(cached(&file, &updated), None);
        assert_eq!(device().capability(), Some((8, 6)));
    }
}
