//! Which `azuread` features each Prometheus version has — the table behind predicted outcomes.
//!
//! Sources: `storage/remote/azuread/azuread.go` and CHANGELOG at each tag (see `../shared/reference/azure-protocols.md`
//! §1.1). `tests/e2e/real_agents.rs` holds it against the built binaries: the `capability.table` check must pass on
//! every auth case of every catalog version.

use crate::scenario::{AuthSpec, Outcome};
use crate::version::Version;

/// An `azuread` feature with the first Prometheus version that has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    /// `azuread` with `managed_identity.client_id` (a UUID, required).
    ManagedIdentityClientId,
    /// `oauth` (client secret).
    OAuth,
    /// `sdk` (DefaultAzureCredential).
    Sdk,
    /// `managed_identity.client_id: ""` → system-assigned.
    SystemAssigned,
    /// `workload_identity`.
    WorkloadIdentity,
    /// Top-level `scope`.
    Scope,
    /// `certificate`.
    Certificate,
}

impl Capability {
    /// Every capability, oldest first (the table's tests walk them all).
    #[cfg(test)]
    pub const ALL: [Capability; 7] = [
        Capability::ManagedIdentityClientId,
        Capability::OAuth,
        Capability::Sdk,
        Capability::SystemAssigned,
        Capability::WorkloadIdentity,
        Capability::Scope,
        Capability::Certificate,
    ];

    /// First version with this capability.
    pub const fn since(self) -> Version {
        match self {
            Capability::ManagedIdentityClientId => Version::new(2, 45, 0),
            Capability::OAuth => Version::new(2, 48, 0),
            Capability::Sdk => Version::new(2, 52, 0),
            Capability::SystemAssigned => Version::new(3, 5, 0),
            Capability::WorkloadIdentity => Version::new(3, 7, 0),
            Capability::Scope => Version::new(3, 9, 0),
            Capability::Certificate => Version::new(3, 13, 0),
        }
    }

    /// How the table names it.
    pub const fn name(self) -> &'static str {
        match self {
            Capability::ManagedIdentityClientId => "managed_identity (client_id)",
            Capability::OAuth => "oauth",
            Capability::Sdk => "sdk",
            Capability::SystemAssigned => "managed_identity (system-assigned)",
            Capability::WorkloadIdentity => "workload_identity",
            Capability::Scope => "scope",
            Capability::Certificate => "certificate",
        }
    }

    /// Whether `version` has it.
    pub fn supported_by(self, version: Version) -> bool {
        version >= self.since()
    }
}

/// The capabilities an auth block needs.
pub fn required(auth: &AuthSpec) -> Vec<Capability> {
    let mut needs = Vec::new();
    if let Some(mi) = &auth.managed_identity {
        needs.push(if mi.client_id.is_empty() {
            Capability::SystemAssigned
        } else {
            Capability::ManagedIdentityClientId
        });
    }
    if auth.oauth.is_some() {
        needs.push(Capability::OAuth);
    }
    if auth.sdk.is_some() {
        needs.push(Capability::Sdk);
    }
    if auth.workload_identity.is_some() {
        needs.push(Capability::WorkloadIdentity);
    }
    if auth.certificate.is_some() {
        needs.push(Capability::Certificate);
    }
    if auth.scope.is_some() {
        needs.push(Capability::Scope);
    }
    needs
}

/// The first capability `version` lacks for this auth block, if any.
pub fn missing(auth: &AuthSpec, version: Version) -> Option<Capability> {
    required(auth).into_iter().find(|c| !c.supported_by(version))
}

/// What the table predicts: `config-rejected` when a capability is missing, else `delivered`.
pub fn predicted_outcome(auth: &AuthSpec, version: Version) -> Outcome {
    if missing(auth, version).is_some() { Outcome::ConfigRejected } else { Outcome::Delivered }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::ManagedIdentityAuth;

    #[test]
    fn system_assigned_needs_3_5() {
        let auth = AuthSpec { managed_identity: Some(ManagedIdentityAuth::default()), ..AuthSpec::default() };
        assert_eq!(predicted_outcome(&auth, Version::new(2, 53, 3)), Outcome::ConfigRejected);
        assert_eq!(predicted_outcome(&auth, Version::new(3, 4, 2)), Outcome::ConfigRejected);
        assert_eq!(predicted_outcome(&auth, Version::new(3, 5, 0)), Outcome::Delivered);
    }

    #[test]
    fn boundaries_are_inclusive() {
        for c in Capability::ALL {
            assert!(c.supported_by(c.since()), "{}", c.name());
            let before = Version::new(c.since().major, c.since().minor.saturating_sub(1), 99);
            if c.since().minor > 0 {
                assert!(!c.supported_by(before), "{}", c.name());
            }
        }
    }
}
