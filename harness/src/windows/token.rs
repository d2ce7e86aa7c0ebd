//! Access tokens: the harness's identities, what an impersonating server holds, and the guards
//! that always revert impersonation.

use super::security::SecurityDescriptor;
use super::sys::{os, own, pcwstr, raw, take_local_wstr, wide};
use crate::error::{Error, OsCode, Result};
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;
use std::os::windows::io::OwnedHandle;
use windows::core::{PCWSTR, PWSTR};
use windows::Win32::Foundation::{HANDLE, LUID};
use windows::Win32::Security::Authorization::ConvertSidToStringSidW;
use windows::Win32::Security::{
    AccessCheck, AdjustTokenPrivileges, CreateRestrictedToken, CreateWellKnownSid, DuplicateTokenEx,
    GetTokenInformation, ImpersonateAnonymousToken, LogonUserW, LookupPrivilegeValueW, RevertToSelf, SecurityAnonymous,
    SecurityDelegation, SecurityIdentification, SecurityImpersonation, SetTokenInformation, TokenGroups,
    TokenImpersonation, TokenImpersonationLevel, TokenIntegrityLevel, TokenPrimary, TokenSessionId, TokenType,
    TokenUser, WinBuiltinAdministratorsSid, DISABLE_MAX_PRIVILEGE, GENERIC_MAPPING, LOGON32_LOGON_INTERACTIVE,
    LOGON32_PROVIDER_DEFAULT, LUID_AND_ATTRIBUTES, PRIVILEGE_SET, PSID, SECURITY_IMPERSONATION_LEVEL,
    SE_PRIVILEGE_ENABLED, SID_AND_ATTRIBUTES, TOKEN_ALL_ACCESS, TOKEN_GROUPS, TOKEN_INFORMATION_CLASS,
    TOKEN_MANDATORY_LABEL, TOKEN_PRIVILEGES, TOKEN_TYPE, TOKEN_USER,
};
use windows::Win32::Storage::FileSystem::{
    FILE_ALL_ACCESS, FILE_GENERIC_EXECUTE, FILE_GENERIC_READ, FILE_GENERIC_WRITE,
};
use windows::Win32::System::SystemServices::{SE_GROUP_INTEGRITY, SE_GROUP_USE_FOR_DENY_ONLY};
use windows::Win32::System::Threading::{
    GetCurrentProcess, GetCurrentThread, OpenProcessToken, OpenThreadToken, SetThreadToken,
};

pub use crate::identity::ImpersonationLevel;

/// Conversions to and from the Win32 value.
trait ImpersonationLevelRaw {
    fn from_raw(v: SECURITY_IMPERSONATION_LEVEL) -> Self;
    fn to_raw(self) -> SECURITY_IMPERSONATION_LEVEL;
}

impl ImpersonationLevelRaw for ImpersonationLevel {
    fn from_raw(v: SECURITY_IMPERSONATION_LEVEL) -> Self {
        match v.0 {
            0 => ImpersonationLevel::Anonymous,
            1 => ImpersonationLevel::Identification,
            2 => ImpersonationLevel::Impersonation,
            _ => ImpersonationLevel::Delegation,
        }
    }

    fn to_raw(self) -> SECURITY_IMPERSONATION_LEVEL {
        match self {
            ImpersonationLevel::Anonymous => SecurityAnonymous,
            ImpersonationLevel::Identification => SecurityIdentification,
            ImpersonationLevel::Impersonation => SecurityImpersonation,
            ImpersonationLevel::Delegation => SecurityDelegation,
        }
    }
}

/// Mandatory integrity level, from the token's integrity SID (`S-1-16-RID`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegrityLevel {
    /// `S-1-16-0`.
    Untrusted,
    /// `S-1-16-4096`.
    Low,
    /// `S-1-16-8192`.
    Medium,
    /// `S-1-16-8448`.
    MediumPlus,
    /// `S-1-16-12288`.
    High,
    /// `S-1-16-16384` and above.
    System,
}

impl IntegrityLevel {
    /// The level for an integrity RID.
    pub fn from_rid(rid: u32) -> Self {
        match rid {
            0..=0x0FFF => IntegrityLevel::Untrusted,
            0x1000..=0x1FFF => IntegrityLevel::Low,
            0x2000..=0x20FF => IntegrityLevel::Medium,
            0x2100..=0x2FFF => IntegrityLevel::MediumPlus,
            0x3000..=0x3FFF => IntegrityLevel::High,
            _ => IntegrityLevel::System,
        }
    }

    /// The RID of the level's canonical SID.
    pub fn rid(self) -> u32 {
        match self {
            IntegrityLevel::Untrusted => 0,
            IntegrityLevel::Low => 0x1000,
            IntegrityLevel::Medium => 0x2000,
            IntegrityLevel::MediumPlus => 0x2100,
            IntegrityLevel::High => 0x3000,
            IntegrityLevel::System => 0x4000,
        }
    }
}

/// Primary (a process's) or impersonation (a thread's) token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// A process token.
    Primary,
    /// A thread token at the given level.
    Impersonation(ImpersonationLevel),
}

/// One group of a token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInfo {
    /// The group's SID string.
    pub sid: String,
    /// The raw `SE_GROUP_*` attributes.
    pub attributes: u32,
    /// `SE_GROUP_USE_FOR_DENY_ONLY`: matches deny ACEs only.
    pub deny_only: bool,
}

/// What a token says about its holder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// The user SID string.
    pub user: String,
    /// Every group.
    pub groups: Vec<GroupInfo>,
    /// The integrity level, when the token has one.
    pub integrity: Option<IntegrityLevel>,
    /// Primary or impersonation, and the level.
    pub kind: TokenKind,
    /// The token's session id.
    pub session_id: u32,
}

impl TokenInfo {
    /// The impersonation level, `None` for a primary token.
    pub fn impersonation_level(&self) -> Option<ImpersonationLevel> {
        match self.kind {
            TokenKind::Impersonation(l) => Some(l),
            TokenKind::Primary => None,
        }
    }

    /// True when `sid` is one of the groups and not deny-only.
    pub fn has_enabled_group(&self, sid: &str) -> bool {
        self.groups.iter().any(|g| g.sid == sid && !g.deny_only)
    }
}

/// An access token, owned; closed on drop.
#[derive(Debug)]
pub struct Token {
    handle: OwnedHandle,
}

/// `GENERIC_MAPPING` for files and pipes.
pub(crate) const FILE_MAPPING: GENERIC_MAPPING = GENERIC_MAPPING {
    GenericRead: FILE_GENERIC_READ.0,
    GenericWrite: FILE_GENERIC_WRITE.0,
    GenericExecute: FILE_GENERIC_EXECUTE.0,
    GenericAll: FILE_ALL_ACCESS.0,
};

fn sid_string(sid: PSID) -> Result<String> {
    let mut s = PWSTR::null();
    // SAFETY: `sid` points at a valid SID inside a buffer the caller keeps alive.
    unsafe { ConvertSidToStringSidW(sid, &mut s) }.map_err(|e| os("ConvertSidToStringSidW", "formatting a SID", e))?;
    Ok(take_local_wstr(s))
}

/// A well-known SID in a u64-aligned buffer.
fn well_known_sid(kind: windows::Win32::Security::WELL_KNOWN_SID_TYPE) -> Result<Vec<u64>> {
    let mut buf = vec![0u64; 12]; // SECURITY_MAX_SID_SIZE is 68 bytes
    let mut len = (buf.len() * 8) as u32;
    // SAFETY: `buf` has `len` writable bytes.
    unsafe { CreateWellKnownSid(kind, None, Some(PSID(buf.as_mut_ptr().cast())), &mut len) }
        .map_err(|e| os("CreateWellKnownSid", "building a well-known SID", e))?;
    Ok(buf)
}

fn token_from(h: HANDLE) -> Token {
    Token { handle: own(h) }
}

impl Token {
    /// The owned handle.
    pub fn handle(&self) -> &OwnedHandle {
        &self.handle
    }

    fn raw(&self) -> HANDLE {
        raw(&self.handle)
    }

    /// The harness process's own token.
    pub fn current_process() -> Result<Token> {
        let mut h = HANDLE::default();
        // SAFETY: pseudo-handle of the current process; `h` receives a new owned handle.
        unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_ALL_ACCESS, &mut h) }
            .map_err(|e| os("OpenProcessToken", "opening the harness's own token", e))?;
        Ok(token_from(h))
    }

    /// The calling thread's impersonation token, `None` when the thread is not impersonating.
    pub fn current_thread() -> Result<Option<Token>> {
        let mut h = HANDLE::default();
        // SAFETY: pseudo-handle of the current thread; OpenAsSelf so the check uses the process.
        match unsafe { OpenThreadToken(GetCurrentThread(), TOKEN_ALL_ACCESS, true, &mut h) } {
            Ok(()) => Ok(Some(token_from(h))),
            Err(e) if super::sys::code_of(&e) == OsCode::NO_TOKEN => Ok(None),
            Err(e) => Err(os("OpenThreadToken", "opening the thread token", e)),
        }
    }

    /// A copy of this token of the given kind (`DuplicateTokenEx`).
    pub fn duplicate(&self, kind: TokenKind) -> Result<Token> {
        let (level, ty): (SECURITY_IMPERSONATION_LEVEL, TOKEN_TYPE) = match kind {
            TokenKind::Primary => (SecurityImpersonation, TokenPrimary),
            TokenKind::Impersonation(l) => (l.to_raw(), TokenImpersonation),
        };
        let mut h = HANDLE::default();
        // SAFETY: valid token handle; `h` receives a new owned handle.
        unsafe { DuplicateTokenEx(self.raw(), TOKEN_ALL_ACCESS, None, level, ty, &mut h) }
            .map_err(|e| os("DuplicateTokenEx", format!("duplicating a token as {kind:?}"), e))?;
        Ok(token_from(h))
    }

    /// A restricted primary token: every privilege but `SeChangeNotifyPrivilege` removed
    /// (`DISABLE_MAX_PRIVILEGE`) and `BUILTIN\Administrators` made deny-only.
    pub fn restricted(&self) -> Result<Token> {
        let mut admins = well_known_sid(WinBuiltinAdministratorsSid)?;
        let disable = [SID_AND_ATTRIBUTES { Sid: PSID(admins.as_mut_ptr().cast()), Attributes: 0 }];
        let mut h = HANDLE::default();
        // SAFETY: valid token; `disable` and the SID it points to outlive the call.
        unsafe { CreateRestrictedToken(self.raw(), DISABLE_MAX_PRIVILEGE, Some(&disable), None, None, &mut h) }
            .map_err(|e| os("CreateRestrictedToken", "making a restricted token", e))?;
        Ok(token_from(h))
    }

    /// A primary copy of this token lowered to `level` (`SetTokenInformation(TokenIntegrityLevel)`).
    /// Check the effect with [`Token::info`]: some platforms accept the call and do nothing.
    pub fn with_integrity(&self, level: IntegrityLevel) -> Result<Token> {
        let t = self.duplicate(TokenKind::Primary)?;
        // S-1-16-RID: revision 1, one sub-authority, authority 16.
        let mut sid = [0u64; 2];
        {
            // SAFETY: `sid` is 16 bytes, exactly a one-sub-authority SID; we write it bytewise.
            let b = unsafe { std::slice::from_raw_parts_mut(sid.as_mut_ptr().cast::<u8>(), 16) };
            b[..8].copy_from_slice(&[1, 1, 0, 0, 0, 0, 0, 16]);
            b[8..12].copy_from_slice(&level.rid().to_le_bytes());
        }
        let label = TOKEN_MANDATORY_LABEL {
            Label: SID_AND_ATTRIBUTES { Sid: PSID(sid.as_mut_ptr().cast()), Attributes: SE_GROUP_INTEGRITY as u32 },
        };
        let size = std::mem::size_of::<TOKEN_MANDATORY_LABEL>() as u32 + 12;
        // SAFETY: `label` and the SID it points to outlive the call; the size covers both.
        unsafe {
            SetTokenInformation(t.raw(), TokenIntegrityLevel, (&label as *const TOKEN_MANDATORY_LABEL).cast(), size)
        }
        .map_err(|e| os("SetTokenInformation", format!("setting integrity {level:?}"), e))?;
        Ok(t)
    }

    /// A low-integrity primary copy of this token.
    pub fn low_integrity(&self) -> Result<Token> {
        self.with_integrity(IntegrityLevel::Low)
    }

    /// The anonymous logon's token (`NT AUTHORITY\ANONYMOUS LOGON`, `S-1-5-7`), as an
    /// impersonation token (`ImpersonateAnonymousToken`, then read back and reverted).
    pub fn anonymous() -> Result<Token> {
        // SAFETY: impersonates on the current thread; the guard below reverts on every path.
        unsafe { ImpersonateAnonymousToken(GetCurrentThread()) }
            .map_err(|e| os("ImpersonateAnonymousToken", "taking the anonymous token", e))?;
        let guard = Impersonation::new();
        let t = Token::current_thread()?;
        drop(guard);
        t.ok_or_else(|| Error::Unsupported("ImpersonateAnonymousToken succeeded but the thread has no token".into()))
    }

    /// Another user's token from credentials (`LogonUserW`, interactive logon).
    pub fn logon(user: &str, domain: &str, password: &str) -> Result<Token> {
        let (u, d, p) = (wide("user name", user)?, wide("domain", domain)?, wide("password", password)?);
        let mut h = HANDLE::default();
        // SAFETY: NUL-terminated strings outlive the call; `h` receives a new owned handle.
        unsafe {
            LogonUserW(pcwstr(&u), pcwstr(&d), pcwstr(&p), LOGON32_LOGON_INTERACTIVE, LOGON32_PROVIDER_DEFAULT, &mut h)
        }
        .map_err(|e| os("LogonUserW", format!("logging on {domain}\\{user}"), e))?;
        Ok(token_from(h))
    }

    /// A primary copy of this token in session `session_id`. Needs `SeTcbPrivilege` (held by
    /// LocalSystem), which this enables on the harness's own token first.
    pub fn in_session(&self, session_id: u32) -> Result<Token> {
        if !enable_privilege("SeTcbPrivilege")? {
            return Err(Error::Unsupported(
                "moving a token to another session needs SeTcbPrivilege, which the harness does not hold".into(),
            ));
        }
        let t = self.duplicate(TokenKind::Primary)?;
        // SAFETY: `session_id` outlives the call and has the size passed.
        unsafe { SetTokenInformation(t.raw(), TokenSessionId, (&session_id as *const u32).cast(), 4) }
            .map_err(|e| os("SetTokenInformation", format!("setting session id {session_id}"), e))?;
        Ok(t)
    }

    fn info_buf(&self, class: TOKEN_INFORMATION_CLASS, what: &str) -> Result<Vec<u64>> {
        let mut len = 0u32;
        // SAFETY: size query: no buffer, `len` receives the size needed.
        let _ = unsafe { GetTokenInformation(self.raw(), class, None, 0, &mut len) };
        let mut buf = vec![0u64; (len as usize).div_ceil(8).max(1)];
        // SAFETY: `buf` has at least `len` writable, u64-aligned bytes.
        unsafe { GetTokenInformation(self.raw(), class, Some(buf.as_mut_ptr().cast()), len, &mut len) }
            .map_err(|e| os("GetTokenInformation", format!("reading the token's {what}"), e))?;
        Ok(buf)
    }

    fn info_u32(&self, class: TOKEN_INFORMATION_CLASS, what: &str) -> Result<u32> {
        let mut v = 0u32;
        let mut len = 0u32;
        // SAFETY: `v` is 4 writable bytes, as the u32-valued classes need.
        unsafe { GetTokenInformation(self.raw(), class, Some((&mut v as *mut u32).cast()), 4, &mut len) }
            .map_err(|e| os("GetTokenInformation", format!("reading the token's {what}"), e))?;
        Ok(v)
    }

    /// User, groups, integrity level, kind and session of this token.
    pub fn info(&self) -> Result<TokenInfo> {
        let user_buf = self.info_buf(TokenUser, "user")?;
        // SAFETY: GetTokenInformation(TokenUser) filled `user_buf` with a TOKEN_USER (aligned).
        let user = sid_string(unsafe { &*user_buf.as_ptr().cast::<TOKEN_USER>() }.User.Sid)?;
        let groups_buf = self.info_buf(TokenGroups, "groups")?;
        // SAFETY: the buffer holds a TOKEN_GROUPS with `GroupCount` entries following it.
        let groups = unsafe {
            let g = &*groups_buf.as_ptr().cast::<TOKEN_GROUPS>();
            std::slice::from_raw_parts(g.Groups.as_ptr(), g.GroupCount as usize)
        };
        let groups = groups
            .iter()
            .map(|g| {
                Ok(GroupInfo {
                    sid: sid_string(g.Sid)?,
                    attributes: g.Attributes,
                    deny_only: g.Attributes & SE_GROUP_USE_FOR_DENY_ONLY as u32 != 0,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let integrity = match self.info_buf(TokenIntegrityLevel, "integrity level") {
            Ok(buf) => {
                // SAFETY: the buffer holds a TOKEN_MANDATORY_LABEL whose SID follows it.
                let sid = sid_string(unsafe { &*buf.as_ptr().cast::<TOKEN_MANDATORY_LABEL>() }.Label.Sid)?;
                sid.rsplit('-').next().and_then(|r| r.parse::<u32>().ok()).map(IntegrityLevel::from_rid)
            }
            Err(_) => None,
        };
        let kind = if self.info_u32(TokenType, "type")? == TokenPrimary.0 as u32 {
            TokenKind::Primary
        } else {
            let level = self.info_u32(TokenImpersonationLevel, "impersonation level")?;
            TokenKind::Impersonation(ImpersonationLevel::from_raw(SECURITY_IMPERSONATION_LEVEL(level as i32)))
        };
        let session_id = self.info_u32(TokenSessionId, "session id")?;
        Ok(TokenInfo { user, groups, integrity, kind, session_id })
    }

    /// `AccessCheck`: does this token get `desired` (file/pipe rights) from `sd`?
    pub fn access_check(&self, sd: &SecurityDescriptor, desired: u32) -> Result<bool> {
        let imp = match self.info()?.kind {
            TokenKind::Primary => self.duplicate(TokenKind::Impersonation(ImpersonationLevel::Identification))?,
            TokenKind::Impersonation(_) => {
                self.duplicate(TokenKind::Impersonation(ImpersonationLevel::Identification))?
            }
        };
        let mut privs = [0u64; 8];
        let mut privs_len = (privs.len() * 8) as u32;
        let (mut granted, mut status) = (0u32, windows::core::BOOL(0));
        // SAFETY: all pointers are valid for the call; the SD is a valid self-relative descriptor.
        unsafe {
            AccessCheck(
                sd.as_psd(),
                imp.raw(),
                desired,
                &FILE_MAPPING,
                Some(privs.as_mut_ptr().cast::<PRIVILEGE_SET>()),
                &mut privs_len,
                &mut granted,
                &mut status,
            )
        }
        .map_err(|e| os("AccessCheck", "checking a token against a security descriptor", e))?;
        Ok(status.as_bool())
    }

    /// Makes this token the calling thread's token (`SetThreadToken`) until the guard drops.
    /// A client uses it to open a pipe as another identity.
    pub fn impersonate_on_this_thread(&self) -> Result<Impersonation<'_>> {
        let imp = self.duplicate(TokenKind::Impersonation(ImpersonationLevel::Impersonation))?;
        // SAFETY: sets the current thread's token; the guard reverts it.
        unsafe { SetThreadToken(None, Some(imp.raw())) }
            .map_err(|e| os("SetThreadToken", "impersonating a token", e))?;
        Ok(Impersonation::new())
    }
}

/// Enables a privilege on the harness's own token. `Ok(false)` when the token does not hold it.
pub fn enable_privilege(name: &str) -> Result<bool> {
    let t = Token::current_process()?;
    let w = wide("privilege name", name)?;
    let mut luid = LUID::default();
    // SAFETY: `w` is NUL-terminated; `luid` is a valid out-pointer.
    unsafe { LookupPrivilegeValueW(PCWSTR::null(), pcwstr(&w), &mut luid) }
        .map_err(|e| os("LookupPrivilegeValueW", format!("looking up {name}"), e))?;
    let tp = TOKEN_PRIVILEGES {
        PrivilegeCount: 1,
        Privileges: [LUID_AND_ATTRIBUTES { Luid: luid, Attributes: SE_PRIVILEGE_ENABLED }],
    };
    // SAFETY: `tp` outlives the call; AdjustTokenPrivileges sets the last error even on success.
    unsafe { AdjustTokenPrivileges(t.raw(), false, Some(&tp), 0, None, None) }
        .map_err(|e| os("AdjustTokenPrivileges", format!("enabling {name}"), e))?;
    // SAFETY: reads this thread's last error, which AdjustTokenPrivileges just set.
    let last = unsafe { windows::Win32::Foundation::GetLastError() };
    Ok(OsCode::Win32(last.0) != OsCode::NOT_ALL_ASSIGNED)
}

/// While alive, the calling thread is impersonating; dropping it calls `RevertToSelf`.
///
/// Not `Send`: impersonation belongs to the thread that started it. If `RevertToSelf` ever
/// fails the process aborts, because carrying on under a client's identity is worse.
#[derive(Debug)]
pub struct Impersonation<'a> {
    _not_send: PhantomData<(*const (), &'a ())>,
}

impl Impersonation<'_> {
    pub(crate) fn new() -> Self {
        Impersonation { _not_send: PhantomData }
    }

    /// The thread token held now.
    pub fn token(&self) -> Result<Token> {
        Token::current_thread()?.ok_or_else(|| Error::Unsupported("impersonating, yet the thread has no token".into()))
    }

    /// The thread token's description.
    pub fn info(&self) -> Result<TokenInfo> {
        self.token()?.info()
    }

    /// The level the thread token allows (Identification means: do not act for this client).
    pub fn level(&self) -> Result<ImpersonationLevel> {
        self.info()?
            .impersonation_level()
            .ok_or_else(|| Error::Unsupported("the thread token is a primary token".into()))
    }
}

impl Drop for Impersonation<'_> {
    fn drop(&mut self) {
        // SAFETY: reverts the current thread to the process token.
        if unsafe { RevertToSelf() }.is_err() {
            eprintln!("pipe-harness: RevertToSelf failed; aborting rather than run as the client");
            std::process::abort();
        }
    }
}
