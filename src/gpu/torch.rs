//! The PyTorch wheel index to install from: pure policy over the driver version, the GPUs'
//! compute capabilities and the configuration (tables from FACTS.md, "CUDA and PyTorch wheels").

use super::detect::Platform;
use super::version::{at_least, Version};
use crate::config::Cuda;

/// Minimum Linux driver per CUDA toolkit, newest first (NVIDIA's CUDA release notes).
pub(crate) const TOOLKITS: &[(&str, &str)] = &[
    ("13.2", "595.45.04"),
    ("13.1", "590.44.01"),
    ("13.0", "580.65.06"),
    ("12.9", "575.51.03"),
    ("12.8", "570.26"),
    ("12.6", "560.28.03"),
    ("12.5", "555.42.02"),
    ("12.4", "550.54.14"),
    ("12.2", "535.54.03"),
    ("12.1", "530.30.02"),
    ("12.0", "525.60.13"),
    ("11.8", "520.61.05"),
];

/// The CUDA indexes PyTorch publishes, newest first, with their toolkit version.
pub(crate) const INDEXES: &[(&str, &str)] = &[
    ("cu132", "13.2"),
    ("cu130", "13.0"),
    ("cu129", "12.9"),
    ("cu128", "12.8"),
    ("cu126", "12.6"),
    ("cu124", "12.4"),
    ("cu121", "12.1"),
    ("cu118", "11.8"),
];

/// The newest CUDA toolkit a driver supports (`"12.4"` for 550.144.03).
pub(crate) fn cuda_max(driver: &str) -> Option<&'static str> {
    let v = Version::parse(driver)?;
    TOOLKITS.iter().find(|(_, min)| at_least(&v, min)).map(|(cuda, _)| *cuda)
}

fn min_driver(cuda: &str) -> &'static str {
    TOOLKITS.iter().find(|(c, _)| *c == cuda).map_or("", |(_, d)| *d)
}

/// Whether index `name` (e.g. `cu128`) ships kernels for compute capability `cc`.
///
/// cu128 and later dropped Maxwell and Pascal (< 7.0), and from torch 2.10 Volta (7.x below
/// Turing's 7.5) is only built for cu126, so anything below 7.5 is served by cu126 at most;
/// cu126 and older have no Blackwell (10.x, 12.x) kernels; nothing current builds for < 5.0.
pub(crate) fn has_kernels(name: &str, cc: (u32, u32)) -> bool {
    let rank = INDEXES.iter().position(|(n, _)| *n == name).unwrap_or(usize::MAX);
    let cu126 = 4;
    if cc.0 < 5 {
        false
    } else if cc < (7, 5) {
        rank >= cu126
    } else if cc.0 >= 10 {
        rank < cu126
    } else {
        true
    }
}

/// What the selection works from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Input<'a> {
    /// The host.
    pub(crate) platform: Platform,
    /// `[python] torch` (`auto` or an index name).
    pub(crate) setting: &'a str,
    /// `[gpu] cuda`.
    pub(crate) cuda: Cuda,
    /// The running driver's version, if any.
    pub(crate) driver: Option<&'a str>,
    /// Every GPU's compute capability; `None` when they could not be read.
    pub(crate) capabilities: Option<&'a [(u32, u32)]>,
}

/// A PyTorch wheel index, as uv's `--torch-backend` and `[python] torch` name it; written
/// (`Display`, JSON) as that name, so locks, digests and `labup gpu --json` read as before.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Backend {
    /// PyTorch's CUDA index, by its name (`cu126`).
    Cuda(String),
    /// PyTorch's CPU-only wheels.
    Cpu,
    /// PyTorch's ROCm index, by its name (`rocm6.3`).
    Rocm(String),
    /// PyTorch's Intel GPU wheels.
    Xpu,
    /// PyPI's own torch wheels: no PyTorch index.
    Pypi,
}

impl Backend {
    /// The backend a name stands for: `cpu`, `xpu`, `pypi`, `cuXYZ`, `rocmX.Y` (as `[python]
    /// torch` validates it); `None` for anything else (`auto` included).
    pub(crate) fn parse(name: &str) -> Option<Backend> {
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.');
        match name {
            "cpu" => Some(Backend::Cpu),
            "xpu" => Some(Backend::Xpu),
            "pypi" => Some(Backend::Pypi),
            _ if name.strip_prefix("cu").is_some_and(|t| t.len() == 3 && t.bytes().all(|b| b.is_ascii_digit())) => {
                Some(Backend::Cuda(name.into()))
            }
            _ if name.strip_prefix("rocm").is_some_and(digits) => Some(Backend::Rocm(name.into())),
            _ => None,
        }
    }

    /// Its name.
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Backend::Cuda(name) | Backend::Rocm(name) => name,
            Backend::Cpu => "cpu",
            Backend::Xpu => "xpu",
            Backend::Pypi => "pypi",
        }
    }

    /// Whether it comes from a PyTorch index (every backend but PyPI's own wheels), which
    /// gives it a lock of its own.
    pub(crate) fn is_pytorch_index(&self) -> bool {
        *self != Backend::Pypi
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Backend {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
impl PartialEq<&str> for Backend {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// The chosen backend and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Choice {
    /// The index torch comes from.
    pub(crate) backend: Backend,
    /// A sentence for `labup gpu` and `labup sync`.
    pub(crate) reason: String,
}

fn choice(backend: Backend, reason: String) -> Choice {
    Choice { backend, reason }
}

/// One of [`INDEXES`] by name.
fn cuda(name: &str) -> Backend {
    Backend::Cuda(name.into())
}

fn cc_text(cc: (u32, u32)) -> String {
    format!("{}.{}", cc.0, cc.1)
}

/// Picks the backend.
pub(crate) fn select(input: &Input) -> Choice {
    match Backend::parse(input.setting) {
        Some(Backend::Pypi) => {
            return choice(Backend::Pypi, "set by `[python] torch = \"pypi\"`: PyPI's own torch wheels".into())
        }
        Some(b) => return choice(b, format!("set by `[python] torch = \"{}\"`", input.setting)),
        // `auto` (the configuration accepts nothing else that is not a backend).
        None => {}
    }
    if input.platform == Platform::Macos {
        return choice(Backend::Pypi, "macOS has no CUDA: PyPI's torch uses Metal (MPS) there".into());
    }
    if input.cuda == Cuda::Off {
        return choice(Backend::Cpu, "`[gpu] cuda = \"off\"`".into());
    }
    let Some(driver) = input.driver else {
        return choice(Backend::Cpu, "no NVIDIA driver found".into());
    };
    let Some(v) = Version::parse(driver) else {
        return choice(Backend::Cpu, format!("the driver version `{driver}` cannot be read"));
    };
    let supported: Vec<&str> =
        INDEXES.iter().filter(|(_, cuda)| at_least(&v, min_driver(cuda))).map(|(n, _)| *n).collect();
    let Some(&newest) = supported.first() else {
        let (oldest, cuda) = INDEXES[INDEXES.len() - 1];
        return choice(
            Backend::Cpu,
            format!(
                "driver {driver} is older than any PyTorch CUDA build needs ({oldest} needs CUDA {cuda}, driver ≥ {}): \
                 update the driver",
                min_driver(cuda)
            ),
        );
    };
    let by_driver = format!("driver {driver} supports CUDA {}", cuda_max(driver).unwrap_or("?"));
    let caps = match input.capabilities {
        Some(caps) if !caps.is_empty() => caps,
        _ => {
            return choice(
                cuda(newest),
                format!("{by_driver}; the GPUs' compute capability is unknown, so the newest index"),
            );
        }
    };
    let list = caps.iter().map(|c| cc_text(*c)).collect::<Vec<_>>().join(", ");
    if let Some(&best) = supported.iter().find(|n| caps.iter().all(|cc| has_kernels(n, *cc))) {
        let why = if best == newest {
            "the newest index it supports".to_string()
        } else {
            format!("{newest} has no kernels for compute capability {list}")
        };
        return choice(cuda(best), format!("{by_driver}; {why}; GPU compute capability {list}"));
    }
    // No index serves every GPU: take the newest that serves at least one, else the CPU.
    if let Some(&some) = supported.iter().find(|n| caps.iter().any(|cc| has_kernels(n, *cc))) {
        let left: Vec<String> = caps.iter().filter(|cc| !has_kernels(some, **cc)).map(|c| cc_text(*c)).collect();
        return choice(
            cuda(some),
            format!(
                "{by_driver}; no index has kernels for every GPU ({list}): GPUs with {} cannot run it",
                left.join(", ")
            ),
        );
    }
    let hint = if caps.iter().any(|cc| cc.0 >= 10) {
        format!("Blackwell GPUs need cu128 or newer (driver ≥ {}): update the driver", min_driver("12.8"))
    } else {
        "no current PyTorch CUDA build supports these GPUs".to_string()
    };
    choice(Backend::Cpu, format!("{by_driver}; no index it supports has kernels for compute capability {list}: {hint}"))
}

/// PyTorch's own wheel indexes: `<base>/<backend>`.
pub(crate) const PYTORCH_INDEX: &str = "https://download.pytorch.org/whl";

/// Where the installer looks for torch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// PyTorch's index for this backend: uv's `--torch-backend` (which sends only the PyTorch
    /// packages there), pip's `--index-url <PYTORCH_INDEX>/<backend>` with PyPI as extra.
    Pytorch(Backend),
    /// A PyTorch index at this URL (`[python] torch-index` and the backend).
    Index(String),
    /// PyPI's own torch wheels: no index flags.
    Pypi,
    /// The user's own index settings decide (what, and where it is set): no index flags.
    Yours(String),
}

impl Route {
    /// For `labup gpu` and `sync --dry-run`: the index URL, or what decides.
    pub(crate) fn describe(&self) -> String {
        match self {
            Route::Pytorch(b) => format!("{PYTORCH_INDEX}/{b}"),
            Route::Index(url) => url.clone(),
            Route::Pypi => "PyPI's own torch wheels (https://pypi.org/simple)".into(),
            Route::Yours(what) => format!("your own index settings: {what}"),
        }
    }
}

/// The route for `backend`: the user's own index settings first (labup adds no flags over them),
/// then PyPI for `pypi`, then `[python] torch-index`, else PyTorch's index.
pub(crate) fn route(backend: &Backend, base: Option<&str>, yours: Option<String>) -> Route {
    match (yours, backend, base) {
        (Some(what), _, _) => Route::Yours(what),
        (None, Backend::Pypi, _) => Route::Pypi,
        (None, b, Some(base)) => Route::Index(format!("{}/{b}", base.trim_end_matches('/'))),
        (None, b, None) => Route::Pytorch(b.clone()),
    }
}

/// Whether a requirement line names torch, torchvision or torchaudio.
pub(crate) fn names_torch(line: &str) -> bool {
    let name: String = line
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect::<String>()
        .to_ascii_lowercase();
    matches!(name.as_str(), "torch" | "torchvision" | "torchaudio")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(driver: Option<&str>, caps: Option<&[(u32, u32)]>) -> Choice {
        select(&Input { platform: Platform::Linux, setting: "auto", cuda: Cuda::Auto, driver, capabilities: caps })
    }

    fn backend(driver: &str, caps: &[(u32, u32)]) -> String {
        pick(Some(driver), Some(caps)).backend.to_string()
    }

    /// Every row of the toolkit table, at its minimum and just below it.
    #[test]
    fn each_toolkit_row_at_and_below_its_minimum_driver() {
        let ampere = [(8, 6)];
        let rows = [
            ("595.45.04", "13.2", "cu132", "595.45.03", "cu130"),
            ("590.44.01", "13.1", "cu130", "590.44.00", "cu130"),
            ("580.65.06", "13.0", "cu130", "580.65.05", "cu129"),
            ("575.51.03", "12.9", "cu129", "575.51.02", "cu128"),
            ("570.26", "12.8", "cu128", "570.25.99", "cu126"),
            ("560.28.03", "12.6", "cu126", "560.28.02", "cu124"),
            ("555.42.02", "12.5", "cu124", "555.42.01", "cu124"),
            ("550.54.14", "12.4", "cu124", "550.54.13", "cu121"),
            ("535.54.03", "12.2", "cu121", "535.54.02", "cu121"),
            ("530.30.02", "12.1", "cu121", "530.30.01", "cu118"),
            ("525.60.13", "12.0", "cu118", "525.60.12", "cu118"),
            ("520.61.05", "11.8", "cu118", "520.61.04", "cpu"),
        ];
        for (at, cuda, expect, below, expect_below) in rows {
            assert_eq!(cuda_max(at), Some(cuda), "cuda_max({at})");
            assert_eq!(backend(at, &ampere), expect, "driver {at}");
            assert_eq!(backend(below, &ampere), expect_below, "driver {below}");
        }
        assert_eq!(cuda_max("520.61.04"), None);
        assert_eq!(cuda_max("550.144.03"), Some("12.4"));
    }

    #[test]
    fn old_driver_says_update() {
        let c = pick(Some("470.256.02"), Some(&[(8, 6)]));
        assert_eq!(c.backend, "cpu");
        assert!(c.reason.contains("update the driver"), "{}", c.reason);
    }

    #[test]
    fn pascal_and_maxwell_stop_at_cu126() {
        assert_eq!(backend("580.95.05", &[(6, 1)]), "cu126");
        assert_eq!(backend("580.95.05", &[(5, 2)]), "cu126");
        let c = pick(Some("580.95.05"), Some(&[(6, 1)]));
        assert!(c.reason.contains("cu130 has no kernels for compute capability 6.1"), "{}", c.reason);
        // A driver that cannot reach cu126 still gets the newest it can.
        assert_eq!(backend("550.144.03", &[(6, 1)]), "cu124");
    }

    #[test]
    fn volta_stops_at_cu126_and_turing_does_not() {
        assert_eq!(backend("580.95.05", &[(7, 0)]), "cu126");
        assert_eq!(backend("580.95.05", &[(7, 5)]), "cu130");
    }

    #[test]
    fn blackwell_needs_cu128_or_newer() {
        assert_eq!(backend("570.26", &[(12, 0)]), "cu128");
        assert_eq!(backend("580.65.06", &[(10, 0)]), "cu130");
        let c = pick(Some("560.35.03"), Some(&[(12, 0)]));
        assert_eq!(c.backend, "cpu");
        assert!(c.reason.contains("Blackwell GPUs need cu128 or newer (driver ≥ 570.26)"), "{}", c.reason);
    }

    #[test]
    fn mixed_pascal_and_blackwell_has_no_common_index() {
        let c = pick(Some("580.65.06"), Some(&[(6, 1), (12, 0)]));
        assert_eq!(c.backend, "cu130");
        assert!(
            c.reason.contains("no index has kernels for every GPU (6.1, 12.0): GPUs with 6.1 cannot run it"),
            "{}",
            c.reason
        );
    }

    #[test]
    fn kepler_has_no_index() {
        let c = pick(Some("550.144.03"), Some(&[(3, 7)]));
        assert_eq!(c.backend, "cpu");
        assert!(c.reason.contains("no current PyTorch CUDA build supports these GPUs"), "{}", c.reason);
    }

    #[test]
    fn unknown_capability_takes_the_driver_limit() {
        let c = pick(Some("550.144.03"), None);
        assert_eq!(c.backend, "cu124");
        assert!(c.reason.contains("driver 550.144.03 supports CUDA 12.4"), "{}", c.reason);
        assert_eq!(pick(Some("550.144.03"), Some(&[])).backend, "cu124");
    }

    #[test]
    fn no_gpu_is_cpu_on_linux_and_default_on_macos() {
        assert_eq!(pick(None, None).backend, "cpu");
        let mac =
            Input { platform: Platform::Macos, setting: "auto", cuda: Cuda::Auto, driver: None, capabilities: None };
        assert_eq!(select(&mac).backend, "pypi");
        assert!(select(&mac).reason.contains("Metal (MPS)"));
    }

    #[test]
    fn settings_override() {
        let set = Input {
            platform: Platform::Linux,
            setting: "cu126",
            cuda: Cuda::Auto,
            driver: Some("580.65.06"),
            capabilities: Some(&[(12, 0)]),
        };
        assert_eq!(select(&set), choice(cuda("cu126"), "set by `[python] torch = \"cu126\"`".into()));
        let off = Input { setting: "auto", cuda: Cuda::Off, ..set };
        assert_eq!(select(&off).backend, "cpu");
        let wsl = Input { platform: Platform::Wsl, setting: "auto", cuda: Cuda::On, ..off };
        assert_eq!(select(&wsl).backend, "cu130");
    }

    #[test]
    fn torch_names() {
        for l in ["torch", "torch==2.6.0", "TorchVision>=0.2", "torchaudio ; sys_platform == 'linux'", "torch[opt]"] {
            assert!(names_torch(l), "{l}");
        }
        for l in ["torchmetrics", "pytorch-lightning", "-r torch.txt", "# torch"] {
            assert!(!names_torch(l), "{l}");
        }
    }

    #[test]
    fn routes() {
        let cu126 = cuda("cu126");
        assert_eq!(route(&cu126, None, None), Route::Pytorch(cu126.clone()));
        assert_eq!(route(&cu126, None, None).describe(), "https://download.pytorch.org/whl/cu126");
        assert_eq!(route(&Backend::Cpu, Some("https://m/whl/"), None), Route::Index("https://m/whl/cpu".into()));
        assert_eq!(route(&Backend::Pypi, Some("https://m/whl"), None), Route::Pypi);
        let yours = route(&cu126, Some("https://m/whl"), Some("UV_INDEX_URL in the environment".into()));
        assert_eq!(yours.describe(), "your own index settings: UV_INDEX_URL in the environment");
        let pypi = select(&Input {
            platform: Platform::Linux,
            setting: "pypi",
            cuda: Cuda::Auto,
            driver: Some("580.65.06"),
            capabilities: None,
        });
        assert_eq!(pypi.backend, "pypi");
    }

    #[test]
    fn backends_read_and_write_their_names() {
        for name in ["cu126", "cpu", "xpu", "pypi", "rocm6.3"] {
            assert_eq!(Backend::parse(name).map(|b| b.to_string()).as_deref(), Some(name));
        }
        assert_eq!(Backend::parse("cu126"), Some(Backend::Cuda("cu126".into())));
        assert_eq!(Backend::parse("rocm6.3"), Some(Backend::Rocm("rocm6.3".into())));
        for bad in ["auto", "cu12", "cu12a", "rocm", "gpu", ""] {
            assert_eq!(Backend::parse(bad), None, "{bad}");
        }
        assert!(!Backend::Pypi.is_pytorch_index() && Backend::Cpu.is_pytorch_index());
        assert_eq!(serde_json::to_string(&Backend::Cuda("cu128".into())).unwrap(), "\"cu128\"");
        let set = |setting| {
            select(&Input { platform: Platform::Linux, setting, cuda: Cuda::Auto, driver: None, capabilities: None })
        };
        assert_eq!(set("rocm6.3").backend, Backend::Rocm("rocm6.3".into()));
        assert_eq!(set("cpu").reason, "set by `[python] torch = \"cpu\"`");
    }

    #[test]
    fn kernel_table() {
        assert!(has_kernels("cu118", (5, 0)));
        assert!(!has_kernels("cu128", (6, 0)));
        assert!(has_kernels("cu128", (9, 0)));
        assert!(!has_kernels("cu126", (10, 0)));
        assert!(has_kernels("cu132", (12, 0)));
        assert!(!has_kernels("cu124", (3, 5)));
    }
}
