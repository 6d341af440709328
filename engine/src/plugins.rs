//! The plugin registry: built-in plugins linked into the binary, and shared-library plugins loaded
//! at run time from the recipe's `plugin_paths` and `STRATA_PLUGIN_PATH`.
//!
//! Loading follows a fixed handshake: the library's API version is read first, then its compiler
//! version; only when both match is its vtable touched. Libraries stay loaded for the whole run
//! (each configured method holds its library).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_api::ffi::{self, FfiStr, FfiVTable, ForeignInfo};
use strata_api::{API_VERSION, Configured, ParamError, Params, PluginDescriptor, RUSTC_VERSION};

use crate::error::{Error, Result};

// Every built-in plugin: generated from the crates under `plugins/` by `cargo xtask registry`, so
// adding a method touches only its own crate.
mod builtin;
pub use builtin::builtin;

/// A shared-library plugin that passed the handshake.
pub struct LoadedPlugin {
    pub info: ForeignInfo,
    pub path: PathBuf,
    vtable: *const FfiVTable,
    library: Arc<libloading::Library>,
}

// SAFETY: the vtable is immutable static data inside the library, which `library` keeps loaded.
unsafe impl Send for LoadedPlugin {}
unsafe impl Sync for LoadedPlugin {}

/// Where a selectable plugin comes from.
pub enum Source<'a> {
    Builtin(&'a PluginDescriptor),
    Library(&'a LoadedPlugin),
}

/// Built-in and loaded plugins together.
pub struct Registry {
    pub builtin: Vec<PluginDescriptor>,
    pub loaded: Vec<LoadedPlugin>,
}

/// One row of `strata plugins`.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    pub id: String,
    pub stage: String,
    pub version: String,
    pub description: String,
    pub origin: String,
}

impl Registry {
    /// Built-ins plus every library found in `dirs`.
    pub fn load(dirs: &[PathBuf]) -> Result<Registry> {
        let mut loaded = Vec::new();
        for dir in dirs {
            for path in library_files(dir)? {
                loaded.push(load_library(&path)?);
            }
        }
        Ok(Registry {
            builtin: builtin(),
            loaded,
        })
    }

    pub fn find(&self, id: &str) -> Option<Source<'_>> {
        if let Some(d) = self.builtin.iter().find(|d| d.id == id) {
            return Some(Source::Builtin(d));
        }
        self.loaded
            .iter()
            .find(|p| p.info.id == id)
            .map(Source::Library)
    }

    /// Ids of every plugin serving a stage (for "did you mean" messages).
    pub fn ids_for(&self, stage: strata_api::StageKind) -> Vec<String> {
        self.listing()
            .into_iter()
            .filter(|l| l.stage == stage.key())
            .map(|l| l.id)
            .collect()
    }

    pub fn listing(&self) -> Vec<Listing> {
        let mut rows: Vec<Listing> = self
            .builtin
            .iter()
            .map(|d| Listing {
                id: d.id.into(),
                stage: d.stage.key().into(),
                version: d.version.into(),
                description: d.description.into(),
                origin: "built-in".into(),
            })
            .chain(self.loaded.iter().map(|p| Listing {
                id: p.info.id.clone(),
                stage: p.info.stage.clone(),
                version: p.info.version.clone(),
                description: p.info.description.clone(),
                origin: p.path.display().to_string(),
            }))
            .collect();
        // Pipeline order (SPEC §2), then id.
        let order = |stage: &str| {
            strata_api::StageKind::ALL
                .iter()
                .position(|s| s.key() == stage)
                .unwrap_or(usize::MAX)
        };
        rows.sort_by(|a, b| (order(&a.stage), &a.id).cmp(&(order(&b.stage), &b.id)));
        rows
    }
}

impl Source<'_> {
    pub fn stage_key(&self) -> String {
        match self {
            Source::Builtin(d) => d.stage.key().to_string(),
            Source::Library(p) => p.info.stage.clone(),
        }
    }

    pub fn version(&self) -> String {
        match self {
            Source::Builtin(d) => d.version.to_string(),
            Source::Library(p) => p.info.version.clone(),
        }
    }

    pub fn configure(&self, params: &Params) -> Result<Configured, ParamError> {
        match self {
            Source::Builtin(d) => (d.configure)(params),
            Source::Library(p) => {
                let keep_alive: ffi::KeepAlive = p.library.clone();
                // SAFETY: the library passed the version handshake and stays loaded via keep_alive.
                unsafe { ffi::configure_foreign(p.vtable, keep_alive, params) }
            }
        }
    }
}

/// Directories named by `STRATA_PLUGIN_PATH` (platform path-list syntax); one that is not a
/// folder (a stale setting) is an error naming the variable.
pub fn env_plugin_dirs() -> Result<Vec<PathBuf>> {
    let Some(value) = std::env::var_os("STRATA_PLUGIN_PATH") else {
        return Ok(Vec::new());
    };
    let dirs: Vec<PathBuf> = std::env::split_paths(&value)
        .filter(|p| !p.as_os_str().is_empty())
        .collect();
    if let Some(stale) = dirs.iter().find(|d| !d.is_dir()) {
        return Err(Error::Plugin {
            plugin: "STRATA_PLUGIN_PATH".into(),
            message: format!(
                "names `{}`, which is not a folder (hint: fix the environment variable, or \
                 unset it to use only the built-in plugins and the recipe's plugin_paths)",
                stale.display()
            ),
        });
    }
    Ok(dirs)
}

fn library_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::Plugin {
        plugin: dir.display().to_string(),
        message: format!("cannot read plugin directory: {e}"),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == std::env::consts::DLL_EXTENSION)
        })
        .collect();
    files.sort();
    Ok(files)
}

/// `libstrata_ratio_difference.so` → `strata_ratio_difference`, the prefix of its symbols.
fn symbol_prefix(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = stem
        .strip_prefix(std::env::consts::DLL_PREFIX)
        .unwrap_or(&stem);
    stem.replace('-', "_")
}

fn load_library(path: &Path) -> Result<LoadedPlugin> {
    let prefix = symbol_prefix(path);
    let refuse = |message: String| Error::Plugin {
        plugin: format!("{prefix} ({})", path.display()),
        message,
    };
    // SAFETY: loading runs the library's initialisers; a plugin directory is trusted like the
    // binary itself. Everything after this is checked before use.
    let library = unsafe { libloading::Library::new(path) }
        .map_err(|e| refuse(format!("cannot load library: {e}")))?;
    let symbol = |suffix: &str| format!("{prefix}{suffix}");

    // 1. The frozen version function, before anything else.
    let api_version = unsafe {
        let f = library
            .get::<extern "C" fn() -> u32>(&symbol(ffi::SYMBOL_API_VERSION))
            .map_err(|_| {
                refuse(format!(
                    "missing symbol `{prefix}{}`: not a strata plugin, or built for another \
                     file name",
                    ffi::SYMBOL_API_VERSION
                ))
            })?;
        f()
    };
    if api_version != API_VERSION {
        return Err(refuse(format!(
            "built with plugin API version {api_version}, this strata expects API version \
             {API_VERSION}; rebuild the plugin against this strata's strata-api"
        )));
    }
    // 2. The compiler version.
    let rustc = unsafe {
        let f = library
            .get::<extern "C" fn() -> FfiStr>(&symbol(ffi::SYMBOL_RUSTC_VERSION))
            .map_err(|_| {
                refuse(format!(
                    "missing symbol `{prefix}{}`",
                    ffi::SYMBOL_RUSTC_VERSION
                ))
            })?;
        f().to_string_lossy()
    };
    if rustc != RUSTC_VERSION {
        return Err(refuse(format!(
            "built with `{rustc}`, this strata was built with `{RUSTC_VERSION}`; rebuild the \
             plugin with the same compiler"
        )));
    }
    // 3. Only now the vtable.
    let vtable = unsafe {
        let f = library
            .get::<extern "C" fn() -> *const FfiVTable>(&symbol(ffi::SYMBOL_VTABLE))
            .map_err(|_| refuse(format!("missing symbol `{prefix}{}`", ffi::SYMBOL_VTABLE)))?;
        f()
    };
    if vtable.is_null() {
        return Err(refuse("vtable is null".into()));
    }
    // SAFETY: vtable checked non-null and the library is loaded.
    let info = unsafe { ffi::foreign_info(vtable) };
    Ok(LoadedPlugin {
        info,
        path: path.to_path_buf(),
        vtable,
        library: Arc::new(library),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbol_prefix_follows_the_file_name() {
        let p = Path::new(&format!(
            "/x/{}strata_ratio_difference.{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_EXTENSION
        ))
        .to_path_buf();
        assert_eq!(symbol_prefix(&p), "strata_ratio_difference");
    }

    #[test]
    fn builtin_ids_are_unique() {
        let mut ids: Vec<_> = builtin().iter().map(|d| d.id).collect();
        ids.sort();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n);
    }
}
