//! The registry of what a run holds: the process trees the harness started (with the token
//! their descendants inherit) and its scratch folders. Plain data, no platform code: the
//! platform modules register into it and read it, and [`crate::supervise`] kills and removes
//! what it lists.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The environment variable that carries a process tree's token on Linux: set on every process
/// the harness starts, inherited by everything that process starts, so [`kill_tree`] finds a
/// descendant that left the process group (a daemon's `setsid`, a double fork).
pub const TREE_VAR: &str = "PIPE_HARNESS_TREE";

/// Live trees: root pid and the tree's token, if it has one.
static TREES: Mutex<BTreeMap<u32, Option<String>>> = Mutex::new(BTreeMap::new());
static FOLDERS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn lock<T>(m: &'static Mutex<T>) -> MutexGuard<'static, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Registers the process tree rooted at `pid`, started by the harness from `cmd`, for cleanup
/// (with the tree's token, when the backend set one in `cmd`'s environment).
pub fn register_tree(pid: u32, cmd: &Command) {
    lock(&TREES).insert(pid, token_in(cmd));
}

/// The tree token set in `cmd`'s environment, if any.
pub fn token_in(cmd: &Command) -> Option<String> {
    cmd.get_envs().find(|(k, _)| *k == TREE_VAR).and_then(|(_, v)| v.and_then(|v| v.to_str()).map(str::to_string))
}

/// Forgets the tree rooted at `pid`, returning its token.
pub fn forget_tree(pid: u32) -> Option<String> {
    lock(&TREES).remove(&pid).flatten()
}

/// The token of the registered tree rooted at `pid`.
pub fn token_of(pid: u32) -> Option<String> {
    lock(&TREES).get(&pid).cloned().flatten()
}

/// Takes every registered tree (root pid, token), leaving none.
pub fn take_trees() -> BTreeMap<u32, Option<String>> {
    std::mem::take(&mut *lock(&TREES))
}

/// Takes every registered folder, leaving none.
pub fn take_folders() -> Vec<PathBuf> {
    std::mem::take(&mut *lock(&FOLDERS))
}

/// Registers a scratch folder of the run, removed on a termination signal.
pub fn register_folder(path: PathBuf) {
    lock(&FOLDERS).push(path);
}

/// Forgets a folder (it has been removed by its owner).
pub fn release_folder(path: &std::path::Path) {
    lock(&FOLDERS).retain(|p| p != path);
}

/// Accounts this run created, with how many holders use each: deleted when the last lets go,
/// or by the signal cleanup.
static ACCOUNTS: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());

/// Takes a hold on an account this run created (`created`: it was just made) or holds
/// already; `false` when the account is neither (it existed before the run: not ours).
pub fn hold_account(name: &str, created: bool) -> bool {
    let mut held = lock(&ACCOUNTS);
    match held.get_mut(name) {
        Some(n) => {
            *n += 1;
            true
        }
        None if created => {
            held.insert(name.to_string(), 1);
            true
        }
        None => false,
    }
}

/// Lets go of a hold; `true` when it was the last (the account is to be deleted now).
pub fn let_go_account(name: &str) -> bool {
    let mut held = lock(&ACCOUNTS);
    match held.get_mut(name) {
        Some(n) if *n > 1 => {
            *n -= 1;
            false
        }
        Some(_) => {
            held.remove(name);
            true
        }
        None => false,
    }
}

/// Takes every account this run created, leaving none.
pub fn take_accounts() -> Vec<String> {
    std::mem::take(&mut *lock(&ACCOUNTS)).into_keys().collect()
}

/// Whether this run holds an account it created.
pub fn holds_account(name: &str) -> bool {
    lock(&ACCOUNTS).contains_key(name)
}

/// Process trees registered now (for tests).
pub fn live_trees() -> Vec<u32> {
    lock(&TREES).keys().copied().collect()
}

/// Every process below `root` in a `(process, parent)` list, breadth first. A process is
/// taken once, so a stale parent id that closes a loop (Windows keeps a dead parent's id)
/// cannot make it run forever.
pub fn tree_below(root: u32, parent_of: &[(u32, u32)]) -> Vec<u32> {
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        let children: Vec<u32> =
            parent_of.iter().filter(|(c, pp)| *pp == p && !found.contains(c)).map(|(c, _)| *c).collect();
        found.extend(children);
        i += 1;
    }
    found.remove(0);
    found
}

/// A restoring action the signal cleanup runs (a managed service put back as it was found).
pub type CleanupAction = Box<dyn Fn() + Send>;

static CLEANUPS: Mutex<BTreeMap<u64, CleanupAction>> = Mutex::new(BTreeMap::new());

/// Registers `action` for the signal cleanup; the number given back releases it.
pub fn register_cleanup(action: CleanupAction) -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    lock(&CLEANUPS).insert(id, action);
    id
}

/// Forgets a cleanup action (its owner has run it).
pub fn release_cleanup(id: u64) {
    lock(&CLEANUPS).remove(&id);
}

/// Takes every registered cleanup action, leaving none.
pub fn take_cleanups() -> Vec<CleanupAction> {
    std::mem::take(&mut *lock(&CLEANUPS)).into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::tree_below;

    #[test]
    fn a_tree_is_found_breadth_first_and_a_parent_loop_ends() {
        let pairs = [(2, 1), (3, 1), (4, 2), (1, 4), (9, 8)];
        assert_eq!(tree_below(1, &pairs), vec![2, 3, 4]);
        assert!(tree_below(9, &pairs).is_empty());
    }
}
