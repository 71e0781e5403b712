//! rpyc's attribute policy, written once: which attribute of a served object
//! a peer may get, set or delete, and under which name it is looked up.
//!
//! This is `Connection._check_attr` of rpyc 6.0.2 (`rpyc/core/protocol.py`),
//! step for step, with every config key it reads: the `allow_getattr` /
//! `allow_setattr` / `allow_delattr` gates, `allow_all_attrs`,
//! `allow_exposed_attrs` with `exposed_prefix`, `allow_safe_attrs` with
//! `safe_attrs`, and `allow_public_attrs`, and its exposed-versus-plain
//! resolution with the `hasattr` and static-lookup probes in rpyc's order.
//!
//! It is generic twice over, so both object worlds use the same code:
//! * where the settings come from ([`PolicySource`]): a fixed [`AttrPolicy`]
//!   for Rust services, or a live config dict that a user may change after
//!   connecting;
//! * how an attribute is probed ([`AttrProbe`]): Python's `hasattr` (which
//!   may run properties and `__getattr__`, and may raise) and
//!   `inspect.getattr_static`, or a Rust object's own answer.
//!
//! It hands the serving layer the name to look up (plain, or with the
//! exposed prefix), or a [`PolicyError`] that becomes rpyc's
//! `AttributeError("cannot access 'name'")` for the peer.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;

/// Which attribute operation a check is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// GETATTR, CALLATTR and the lookups inside CMP and CTXEXIT
    /// (`allow_getattr`).
    Get,
    /// SETATTR (`allow_setattr`).
    Set,
    /// DELATTR (`allow_delattr`).
    Del,
}

/// The boolean config keys the policy reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PolicyFlag {
    /// `allow_getattr`
    AllowGetattr,
    /// `allow_setattr`
    AllowSetattr,
    /// `allow_delattr`
    AllowDelattr,
    /// `allow_all_attrs`
    AllowAllAttrs,
    /// `allow_exposed_attrs`
    AllowExposedAttrs,
    /// `allow_safe_attrs`
    AllowSafeAttrs,
    /// `allow_public_attrs`
    AllowPublicAttrs,
}

impl PolicyFlag {
    /// The rpyc config key.
    pub fn key(self) -> &'static str {
        match self {
            PolicyFlag::AllowGetattr => "allow_getattr",
            PolicyFlag::AllowSetattr => "allow_setattr",
            PolicyFlag::AllowDelattr => "allow_delattr",
            PolicyFlag::AllowAllAttrs => "allow_all_attrs",
            PolicyFlag::AllowExposedAttrs => "allow_exposed_attrs",
            PolicyFlag::AllowSafeAttrs => "allow_safe_attrs",
            PolicyFlag::AllowPublicAttrs => "allow_public_attrs",
        }
    }

    fn gate(access: Access) -> PolicyFlag {
        match access {
            Access::Get => PolicyFlag::AllowGetattr,
            Access::Set => PolicyFlag::AllowSetattr,
            Access::Del => PolicyFlag::AllowDelattr,
        }
    }
}

/// Where the policy's settings come from. Reading one may fail (a Python
/// config dict holding something odd), with the source's own error `E`.
pub trait PolicySource<E> {
    /// The value of a boolean key.
    fn flag(&self, flag: PolicyFlag) -> Result<bool, E>;
    /// `exposed_prefix`.
    fn exposed_prefix(&self) -> Result<Cow<'_, str>, E>;
    /// `name in safe_attrs`.
    fn is_safe(&self, name: &str) -> Result<bool, E>;
}

/// How the policy asks an object what it has.
pub trait AttrProbe<E> {
    /// Python's `hasattr(obj, name)`. For a Python object this may run a
    /// property or `__getattr__`, and what they raise (other than
    /// `AttributeError`) comes back as `Err`, as from rpyc.
    fn has_attr(&mut self, name: &str) -> Result<bool, E>;
    /// rpyc's `hasattr_static(obj, name)`: `inspect.getattr_static`, which
    /// runs nothing.
    fn has_attr_static(&mut self, name: &str) -> Result<bool, E>;
}

/// Why the policy refused, or could not decide.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyError<E> {
    /// The name may not be reached; the peer gets
    /// `AttributeError("cannot access 'name'")` (see [`PolicyError::message`]).
    Denied {
        /// The name the peer asked for.
        name: String,
    },
    /// Reading the settings or probing the object failed.
    Failed(E),
}

impl<E> PolicyError<E> {
    /// rpyc's message for a refusal: `cannot access 'name'`, the name as
    /// Python's `repr` writes it.
    pub fn message(name: &str) -> String {
        format!("cannot access {}", crate::brine::Value::Str(name.to_string()).repr())
    }
}

impl<E: fmt::Display> fmt::Display for PolicyError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::Denied { name } => f.write_str(&PolicyError::<E>::message(name)),
            PolicyError::Failed(e) => write!(f, "attribute policy check failed: {e}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for PolicyError<E> {}

impl<E> From<E> for PolicyError<E> {
    fn from(e: E) -> Self {
        PolicyError::Failed(e)
    }
}

/// rpyc's `_check_attr(obj, name, perm)`: the name to look up on the
/// object (`name` itself, or the exposed prefix plus `name`), or a refusal.
///
/// The steps and probes are rpyc's, in its order:
/// 1. the operation's gate (`allow_getattr`, `allow_setattr`, `allow_delattr`);
/// 2. `plain`: `allow_all_attrs`, or an exposed-prefixed name, or a safe
///    name, or a public name, each under its switch;
/// 3. `has_exposed`: `hasattr(obj, prefix + name)` or, failing that,
///    `hasattr_static(obj, prefix + name)`;
/// 4. a plain name wins unless only the exposed one exists
///    (`hasattr(obj, name)` decides); then the exposed name; then a plain
///    name that does not exist (for the better traceback); else refused.
pub fn check_attr<E, S, P>(
    source: &S,
    probe: &mut P,
    name: &str,
    access: Access,
) -> Result<String, PolicyError<E>>
where
    S: PolicySource<E> + ?Sized,
    P: AttrProbe<E> + ?Sized,
{
    let denied = || PolicyError::Denied { name: name.to_string() };
    if !source.flag(PolicyFlag::gate(access))? {
        return Err(denied());
    }
    let exposed = source.flag(PolicyFlag::AllowExposedAttrs)?;
    // `config["allow_exposed_attrs"] and config["exposed_prefix"]`: no
    // prefix at all when exposed names are off (or the prefix is empty).
    let prefix: Cow<'_, str> = if exposed { source.exposed_prefix()? } else { Cow::Borrowed("") };
    // rpyc builds `plain` with `|=`, which reads every switch whatever the
    // earlier ones said (a missing key fails the same way here).
    let all = source.flag(PolicyFlag::AllowAllAttrs)?;
    let exposed_name = exposed && name.starts_with(prefix.as_ref());
    let safe = source.flag(PolicyFlag::AllowSafeAttrs)? && source.is_safe(name)?;
    let public = source.flag(PolicyFlag::AllowPublicAttrs)? && !name.starts_with('_');
    let plain = all | exposed_name | safe | public;
    // Built by hand: `format!` costs several times a plain copy, on every
    // attribute request.
    let mut prefixed = String::with_capacity(prefix.len() + name.len());
    prefixed.push_str(&prefix);
    prefixed.push_str(name);
    let has_exposed =
        !prefix.is_empty() && (probe.has_attr(&prefixed)? || probe.has_attr_static(&prefixed)?);
    if plain && (!has_exposed || probe.has_attr(name)?) {
        return Ok(name.to_string());
    }
    if has_exposed {
        return Ok(prefixed);
    }
    if plain {
        return Ok(name.to_string());
    }
    Err(denied())
}

/// rpyc's `safe_attrs`: the dunders (and `next`) a peer may always reach
/// while `allow_safe_attrs` is on.
pub const SAFE_ATTRS: &[&str] = &[
    "__abs__",
    "__add__",
    "__and__",
    "__bool__",
    "__cmp__",
    "__contains__",
    "__delitem__",
    "__delslice__",
    "__div__",
    "__divmod__",
    "__doc__",
    "__eq__",
    "__float__",
    "__floordiv__",
    "__ge__",
    "__getitem__",
    "__getslice__",
    "__gt__",
    "__hash__",
    "__hex__",
    "__iadd__",
    "__iand__",
    "__idiv__",
    "__ifloordiv__",
    "__ilshift__",
    "__imod__",
    "__imul__",
    "__index__",
    "__int__",
    "__invert__",
    "__ior__",
    "__ipow__",
    "__irshift__",
    "__isub__",
    "__iter__",
    "__itruediv__",
    "__ixor__",
    "__le__",
    "__len__",
    "__long__",
    "__lshift__",
    "__lt__",
    "__mod__",
    "__mul__",
    "__ne__",
    "__neg__",
    "__new__",
    "__nonzero__",
    "__oct__",
    "__or__",
    "__pos__",
    "__pow__",
    "__radd__",
    "__rand__",
    "__rdiv__",
    "__rdivmod__",
    "__repr__",
    "__rfloordiv__",
    "__rlshift__",
    "__rmod__",
    "__rmul__",
    "__ror__",
    "__rpow__",
    "__rrshift__",
    "__rshift__",
    "__rsub__",
    "__rtruediv__",
    "__rxor__",
    "__setitem__",
    "__setslice__",
    "__str__",
    "__sub__",
    "__truediv__",
    "__xor__",
    "next",
    "__length_hint__",
    "__enter__",
    "__exit__",
    "__next__",
    "__format__",
];

/// A fixed attribute policy: the settings of rpyc's `DEFAULT_CONFIG`, for
/// the objects a Rust program serves. Build one with [`AttrPolicy::default`]
/// and the `with_*` methods.
///
/// One default differs from rpyc's: `allow_public_attrs` is on. A Rust
/// object has no separate `exposed_` namespace: what its
/// [`Expose`](crate::Expose) implementation answers *is* what it exposes,
/// so its public names are reachable as they are, or with the prefix
/// (`root.add` and `root.exposed_add` alike). Private names stay refused
/// unless they are safe dunders or `allow_all_attrs` is on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AttrPolicy {
    /// `allow_all_attrs`: any name, private ones included.
    pub allow_all_attrs: bool,
    /// `allow_exposed_attrs`: names with the exposed prefix.
    pub allow_exposed_attrs: bool,
    /// `exposed_prefix` (`"exposed_"`).
    pub exposed_prefix: String,
    /// `allow_safe_attrs`: names in `safe_attrs`.
    pub allow_safe_attrs: bool,
    /// `safe_attrs` (rpyc's [`SAFE_ATTRS`] by default).
    pub safe_attrs: Arc<BTreeSet<String>>,
    /// `allow_public_attrs`: names not starting with `_`.
    pub allow_public_attrs: bool,
    /// `allow_getattr`
    pub allow_getattr: bool,
    /// `allow_setattr` (off by default, as in rpyc).
    pub allow_setattr: bool,
    /// `allow_delattr` (off by default, as in rpyc).
    pub allow_delattr: bool,
}

impl Default for AttrPolicy {
    fn default() -> Self {
        AttrPolicy {
            allow_all_attrs: false,
            allow_exposed_attrs: true,
            exposed_prefix: "exposed_".into(),
            allow_safe_attrs: true,
            safe_attrs: Arc::new(SAFE_ATTRS.iter().map(|s| s.to_string()).collect()),
            allow_public_attrs: true,
            allow_getattr: true,
            allow_setattr: false,
            allow_delattr: false,
        }
    }
}

impl AttrPolicy {
    /// Sets `allow_all_attrs`.
    pub fn with_all_attrs(mut self, on: bool) -> Self {
        self.allow_all_attrs = on;
        self
    }
    /// Sets `allow_public_attrs`.
    pub fn with_public_attrs(mut self, on: bool) -> Self {
        self.allow_public_attrs = on;
        self
    }
    /// Sets `allow_safe_attrs`.
    pub fn with_safe_attrs(mut self, on: bool) -> Self {
        self.allow_safe_attrs = on;
        self
    }
    /// Sets `allow_exposed_attrs` and `exposed_prefix`.
    pub fn with_exposed(mut self, on: bool, prefix: &str) -> Self {
        self.allow_exposed_attrs = on;
        self.exposed_prefix = prefix.to_string();
        self
    }
    /// Sets `allow_getattr`, `allow_setattr` and `allow_delattr`.
    pub fn with_access(mut self, get: bool, set: bool, del: bool) -> Self {
        self.allow_getattr = get;
        self.allow_setattr = set;
        self.allow_delattr = del;
        self
    }

    /// [`check_attr`] under this policy, for a probe that cannot fail.
    pub fn check(
        &self,
        probe: &mut impl AttrProbe<Infallible>,
        name: &str,
        access: Access,
    ) -> Result<String, String> {
        check_attr(self, probe, name, access).map_err(|e| match e {
            PolicyError::Denied { name } => PolicyError::<Infallible>::message(&name),
            PolicyError::Failed(never) => match never {},
        })
    }
}

impl<E> PolicySource<E> for AttrPolicy {
    fn flag(&self, flag: PolicyFlag) -> Result<bool, E> {
        Ok(match flag {
            PolicyFlag::AllowGetattr => self.allow_getattr,
            PolicyFlag::AllowSetattr => self.allow_setattr,
            PolicyFlag::AllowDelattr => self.allow_delattr,
            PolicyFlag::AllowAllAttrs => self.allow_all_attrs,
            PolicyFlag::AllowExposedAttrs => self.allow_exposed_attrs,
            PolicyFlag::AllowSafeAttrs => self.allow_safe_attrs,
            PolicyFlag::AllowPublicAttrs => self.allow_public_attrs,
        })
    }
    fn exposed_prefix(&self) -> Result<Cow<'_, str>, E> {
        Ok(Cow::Borrowed(&self.exposed_prefix))
    }
    fn is_safe(&self, name: &str) -> Result<bool, E> {
        Ok(self.safe_attrs.contains(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An object with a fixed set of attributes; records the probes made.
    struct Attrs {
        have: Vec<&'static str>,
        asked: Vec<String>,
    }

    impl AttrProbe<Infallible> for Attrs {
        fn has_attr(&mut self, name: &str) -> Result<bool, Infallible> {
            self.asked.push(format!("hasattr {name}"));
            Ok(self.have.contains(&name))
        }
        fn has_attr_static(&mut self, name: &str) -> Result<bool, Infallible> {
            self.asked.push(format!("static {name}"));
            Ok(self.have.contains(&name))
        }
    }

    fn obj(have: &[&'static str]) -> Attrs {
        Attrs { have: have.to_vec(), asked: Vec::new() }
    }

    /// rpyc's DEFAULT_CONFIG: public names off.
    fn rpyc_default() -> AttrPolicy {
        AttrPolicy::default().with_public_attrs(false)
    }

    #[test]
    fn exposed_names_resolve_as_in_rpyc() {
        let p = rpyc_default();
        let mut o = obj(&["exposed_add", "add_plain"]);
        assert_eq!(p.check(&mut o, "add", Access::Get).unwrap(), "exposed_add");
        assert_eq!(o.asked, ["hasattr exposed_add"]);
        assert_eq!(p.check(&mut o, "exposed_add", Access::Get).unwrap(), "exposed_add");
        // A plain public name is refused under rpyc's defaults.
        assert_eq!(p.check(&mut o, "add_plain", Access::Get).unwrap_err(), "cannot access 'add_plain'");
        assert!(p.check(&mut o, "_secret", Access::Get).is_err());
        assert!(p.check(&mut o, "__dict__", Access::Get).is_err());
        assert_eq!(p.check(&mut o, "__len__", Access::Get).unwrap(), "__len__");
    }

    #[test]
    fn a_plain_name_wins_only_when_it_exists() {
        let p = rpyc_default().with_public_attrs(true);
        // Both exist: the plain one, after probing it.
        let mut both = obj(&["exposed_x", "x"]);
        assert_eq!(p.check(&mut both, "x", Access::Get).unwrap(), "x");
        assert_eq!(both.asked, ["hasattr exposed_x", "hasattr x"]);
        // Only the exposed one: that one.
        let mut exposed = obj(&["exposed_x"]);
        assert_eq!(p.check(&mut exposed, "x", Access::Get).unwrap(), "exposed_x");
        // Neither: the plain name, for the better traceback.
        let mut neither = obj(&[]);
        assert_eq!(p.check(&mut neither, "x", Access::Get).unwrap(), "x");
        assert_eq!(neither.asked, ["hasattr exposed_x", "static exposed_x"]);
    }

    #[test]
    fn gates_and_switches() {
        let mut o = obj(&["exposed_x", "_y"]);
        assert!(rpyc_default().check(&mut o, "x", Access::Set).is_err());
        assert!(rpyc_default().check(&mut o, "x", Access::Del).is_err());
        let open = rpyc_default().with_access(true, true, true);
        assert_eq!(open.check(&mut o, "x", Access::Set).unwrap(), "exposed_x");
        assert!(rpyc_default().with_access(false, false, false).check(&mut o, "x", Access::Get).is_err());
        assert_eq!(rpyc_default().with_all_attrs(true).check(&mut o, "_y", Access::Get).unwrap(), "_y");
        assert!(rpyc_default().with_safe_attrs(false).check(&mut o, "__len__", Access::Get).is_err());
        // Exposed names off: no prefix, no probe.
        let mut none = obj(&[]);
        let off = rpyc_default().with_exposed(false, "exposed_");
        assert!(off.check(&mut none, "exposed_x", Access::Get).is_err());
        assert!(none.asked.is_empty());
        // A custom prefix.
        let mut custom = obj(&["remote_x"]);
        assert_eq!(
            rpyc_default().with_exposed(true, "remote_").check(&mut custom, "x", Access::Get).unwrap(),
            "remote_x"
        );
    }

    #[test]
    fn refusal_quotes_like_python_repr() {
        assert_eq!(PolicyError::<Infallible>::message("it's"), "cannot access \"it's\"");
    }
}
