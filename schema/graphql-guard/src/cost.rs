//! The cost model, pure: what a parsed document would make the server do, computed
//! before anything runs.
//!
//! - Every field counts 1, `__typename` included.
//! - A list field multiplies the cost of what is selected below it by its bound: its
//!   `limit` argument (a literal, a variable or the argument's default), else the bound
//!   the server declares for it in [`Limits::list_bounds`], else
//!   [`Limits::default_list_bound`].
//! - Fragments are counted as if expanded, but each named fragment is costed once
//!   (memoised by name: its type condition fixes what it means), so a chain of
//!   fragments that double at every step costs its real 2^k without the analysis
//!   taking 2^k steps.
//! - Introspection (`__schema`, `__type`) is counted exactly, against the schema's real
//!   types, fields and arguments, and stops counting as soon as it passes its budget.
//! - Aliases, expanded fields, depth and `login` fields are capped separately.
//!
//! Every operation of the document is checked (validation looks at all of them).

use std::collections::HashMap;

use async_graphql::Variables;
use async_graphql::parser::types::{
    ExecutableDocument, OperationType, Selection, SelectionSet, VariableDefinition,
};
use async_graphql::registry::{MetaInputValue, MetaType, MetaTypeName, Registry};
use async_graphql::{Name, Positioned};
use async_graphql_value::{ConstValue, Value};

/// The registry's map of input values (a field's or directive's arguments).
type Inputs = async_graphql::indexmap::IndexMap<String, MetaInputValue>;

/// The bounds one request must stay within.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Weighted cost (lists multiplied) of a signed-in caller's operation.
    pub max_cost: u64,
    /// Weighted cost of an anonymous caller's operation: enough for `login`.
    pub anonymous_cost: u64,
    /// Fields after expanding fragments, not multiplied by lists.
    pub max_fields: u64,
    /// Aliased fields after expanding fragments.
    pub max_aliases: u64,
    /// Nesting of fields outside introspection.
    pub max_depth: u32,
    /// Values an introspection selection may produce (the standard introspection
    /// query of the node's schema produces a few thousand).
    pub max_introspection_values: u64,
    /// `login` fields in one operation.
    pub max_logins: u64,
    /// Nesting of fragment spreads (a guard for the analysis' own stack).
    pub max_fragment_nesting: u32,
    /// Bound of a list field with no `limit` argument and no declared bound.
    pub default_list_bound: u64,
    /// `(type, field, bound)`: the most items a list field without `limit` returns.
    pub list_bounds: &'static [(&'static str, &'static str, u64)],
    /// Response bytes (scalar values, as resolved) after which execution stops.
    pub max_response_bytes: u64,
}

impl Limits {
    /// Limits for a small clinic box: about 100,000 values (and at most 4 MiB of them)
    /// and well under a second of work.
    pub const fn standard(list_bounds: &'static [(&'static str, &'static str, u64)]) -> Limits {
        Limits {
            max_cost: 100_000,
            anonymous_cost: 20,
            max_fields: 2_000,
            max_aliases: 50,
            max_depth: 12,
            max_introspection_values: 60_000,
            max_logins: 1,
            max_fragment_nesting: 32,
            default_list_bound: 100,
            list_bounds,
            max_response_bytes: 4 * 1024 * 1024,
        }
    }

    fn list_bound(&self, ty: &str, field: &str) -> u64 {
        self.list_bounds
            .iter()
            .find(|(t, f, _)| *t == ty && *f == field)
            .map_or(self.default_list_bound, |(_, _, b)| *b)
    }
}

/// Why a document is refused before it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not signed in, and asking for more than `login`.
    SignInFirst(String),
    /// Over one of the bounds.
    TooCostly(String),
}

impl Refusal {
    pub fn message(&self) -> &str {
        match self {
            Refusal::SignInFirst(m) | Refusal::TooCostly(m) => m,
        }
    }
}

/// What the analysis found, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    pub cost: u64,
    pub fields: u64,
    pub aliases: u64,
    pub depth: u32,
    pub logins: u64,
    pub introspection: u64,
}

impl Cost {
    fn add(&mut self, o: Cost) {
        self.cost = self.cost.saturating_add(o.cost);
        self.fields = self.fields.saturating_add(o.fields);
        self.aliases = self.aliases.saturating_add(o.aliases);
        self.depth = self.depth.max(o.depth);
        self.logins = self.logins.saturating_add(o.logins);
        self.introspection = self.introspection.saturating_add(o.introspection);
    }
}

/// Checks every operation of `doc`; returns the costliest operation's figures.
pub fn check(
    doc: &ExecutableDocument,
    variables: &Variables,
    registry: &Registry,
    limits: &Limits,
    signed_in: bool,
) -> Result<Cost, Refusal> {
    let mut walker = Walker {
        doc,
        registry,
        limits,
        variables,
        var_defaults: &[],
        memo: HashMap::new(),
        nesting: 0,
        signed_in,
    };
    let mut worst = Cost::default();
    for (_, op) in doc.operations.iter() {
        let root = match op.node.ty {
            OperationType::Query => Some(registry.query_type.as_str()),
            OperationType::Mutation => registry.mutation_type.as_deref(),
            OperationType::Subscription => registry.subscription_type.as_deref(),
        };
        walker.var_defaults = &op.node.variable_definitions;
        // Defaults of variables differ per operation: fragments are costed anew.
        walker.memo.clear();
        let c = walker.set(&op.node.selection_set.node, root)?;
        judge(&c, limits, signed_in)?;
        if c.cost >= worst.cost {
            worst = c;
        }
    }
    Ok(worst)
}

fn judge(c: &Cost, limits: &Limits, signed_in: bool) -> Result<(), Refusal> {
    let too = |what: String| Err(Refusal::TooCostly(what));
    if c.logins > limits.max_logins {
        return too(format!("at most {} login per request", limits.max_logins));
    }
    let budget = if signed_in {
        limits.max_cost
    } else {
        limits.anonymous_cost
    };
    if !signed_in && c.cost > budget {
        return Err(Refusal::SignInFirst(
            "log in first: send Authorization: Bearer <token>".into(),
        ));
    }
    if c.cost > budget {
        return too(format!(
            "the query would cost {} (at most {budget}): lists multiply what is selected below them by their limit; ask for fewer items or fields",
            c.cost
        ));
    }
    if c.fields > limits.max_fields {
        return too(format!(
            "the query selects {} fields once fragments are expanded (at most {})",
            c.fields, limits.max_fields
        ));
    }
    if c.aliases > limits.max_aliases {
        return too(format!(
            "the query uses {} aliases (at most {})",
            c.aliases, limits.max_aliases
        ));
    }
    if c.depth > limits.max_depth {
        return too(format!(
            "the query is nested {} deep (at most {})",
            c.depth, limits.max_depth
        ));
    }
    Ok(())
}

struct Walker<'a> {
    doc: &'a ExecutableDocument,
    registry: &'a Registry,
    limits: &'a Limits,
    variables: &'a Variables,
    var_defaults: &'a [Positioned<VariableDefinition>],
    /// Cost of each named fragment; `None` while it is being costed (a cycle).
    memo: HashMap<&'a str, Option<Cost>>,
    nesting: u32,
    signed_in: bool,
}

impl<'a> Walker<'a> {
    fn set(&mut self, set: &'a SelectionSet, ty: Option<&'a str>) -> Result<Cost, Refusal> {
        let mut total = Cost::default();
        for sel in &set.items {
            let c = match &sel.node {
                Selection::Field(f) => self.field(&f.node, ty)?,
                Selection::FragmentSpread(s) => self.spread(s.node.fragment_name.node.as_str())?,
                Selection::InlineFragment(i) => {
                    let cond = i
                        .node
                        .type_condition
                        .as_ref()
                        .map(|c| c.node.on.node.as_str())
                        .or(ty);
                    self.nested(|w| w.set(&i.node.selection_set.node, cond))?
                }
            };
            total.add(c);
            // Sums saturate; stop as soon as the answer is clear.
            if total.fields > self.limits.max_fields.saturating_mul(4) {
                break;
            }
        }
        Ok(total)
    }

    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, Refusal>) -> Result<T, Refusal> {
        if self.nesting >= self.limits.max_fragment_nesting {
            return Err(Refusal::TooCostly(format!(
                "fragments are nested more than {} deep",
                self.limits.max_fragment_nesting
            )));
        }
        self.nesting += 1;
        let r = f(self);
        self.nesting -= 1;
        r
    }

    fn spread(&mut self, name: &'a str) -> Result<Cost, Refusal> {
        match self.memo.get(name) {
            Some(Some(c)) => return Ok(*c),
            Some(None) => {
                return Err(Refusal::TooCostly(format!(
                    "fragment {name} spreads itself"
                )));
            }
            None => {}
        }
        let Some(def) = self.doc.fragments.get(&Name::new(name)) else {
            // Validation reports the unknown fragment.
            return Ok(Cost::default());
        };
        self.memo.insert(name, None);
        let cond = def.node.type_condition.node.on.node.as_str();
        let c = self.nested(|w| w.set(&def.node.selection_set.node, Some(cond)))?;
        self.memo.insert(name, Some(c));
        Ok(c)
    }

    fn field(
        &mut self,
        f: &'a async_graphql::parser::types::Field,
        ty: Option<&'a str>,
    ) -> Result<Cost, Refusal> {
        let name = f.name.node.as_str();
        let alias = u64::from(f.alias.is_some());
        if name == "__typename" {
            return Ok(Cost {
                cost: 1,
                fields: 1,
                aliases: alias,
                depth: 1,
                ..Cost::default()
            });
        }
        let is_root_query = ty == Some(self.registry.query_type.as_str());
        if is_root_query && (name == "__schema" || name == "__type") {
            // Anonymous callers may look up a type or two (the schema is published;
            // GraphQL-over-HTTP conformance checks do this), never the whole schema.
            let budget = if self.signed_in {
                self.limits.max_introspection_values
            } else {
                self.limits.anonymous_cost
            };
            let mut count = Introspection {
                registry: self.registry,
                doc: self.doc,
                left: budget,
                nesting: 0,
                max_nesting: self.limits.max_fragment_nesting,
            };
            let root = if name == "__schema" {
                Some(IObj::Schema)
            } else {
                self.str_arg(f, "name")
                    .filter(|n| self.registry.types.contains_key(n.as_str()))
                    .and_then(|n| self.registry.types.get_key_value(n.as_str()))
                    .map(|(k, _)| IObj::Type(MetaTypeName::Named(k.as_str())))
            };
            if let Some(obj) = root {
                match count.set(&f.selection_set.node, obj) {
                    Err(_) if !self.signed_in => {
                        return Err(Refusal::SignInFirst(
                            "log in first: the schema's description is for signed-in users".into(),
                        ));
                    }
                    r => r?,
                }
            }
            let used = budget - count.left;
            return Ok(Cost {
                cost: 1,
                fields: 1,
                aliases: alias,
                depth: 1,
                introspection: used,
                ..Cost::default()
            });
        }
        let meta = ty
            .and_then(|t| self.registry.types.get(t))
            .and_then(|t| t.field_by_name(name));
        let child_ty = meta.map(|m| MetaTypeName::concrete_typename(&m.ty));
        let mut child = if f.selection_set.node.items.is_empty() {
            Cost::default()
        } else {
            self.set(&f.selection_set.node, child_ty)?
        };
        let multiplier = match (meta, ty) {
            (Some(m), Some(t)) if m.ty.contains('[') && !f.selection_set.node.items.is_empty() => {
                match m.args.get("limit") {
                    Some(arg) => self.limit_arg(f, arg),
                    None => self.limits.list_bound(t, name),
                }
            }
            _ => 1,
        };
        let is_login =
            ty.is_some() && ty == self.registry.mutation_type.as_deref() && name == "login";
        child.cost = child.cost.saturating_mul(multiplier).saturating_add(1);
        child.fields = child.fields.saturating_add(1);
        child.aliases = child.aliases.saturating_add(alias);
        child.depth = child.depth.saturating_add(1);
        child.logins = child.logins.saturating_add(u64::from(is_login));
        Ok(child)
    }

    /// The value of a `limit` argument: literal, variable, variable default or the
    /// argument's own default. One that is not a count costs the default bound (the
    /// resolver refuses it anyway).
    fn limit_arg(&self, f: &'a async_graphql::parser::types::Field, arg: &MetaInputValue) -> u64 {
        let given = f
            .arguments
            .iter()
            .find(|(n, _)| n.node.as_str() == "limit")
            .map(|(_, v)| &v.node);
        let number = match given {
            Some(Value::Variable(var)) => self.variable(var),
            Some(Value::Number(n)) => n.as_u64(),
            Some(_) => None,
            None => arg
                .default_value
                .as_deref()
                .and_then(|d| d.parse::<u64>().ok()),
        };
        number.unwrap_or(self.limits.default_list_bound).max(1)
    }

    fn variable(&self, var: &Name) -> Option<u64> {
        let value = self.variables.get(var).or_else(|| {
            self.var_defaults
                .iter()
                .find(|d| &d.node.name.node == var)
                .and_then(|d| d.node.default_value.as_ref())
                .map(|d| &d.node)
        })?;
        match value {
            ConstValue::Number(n) => n.as_u64(),
            _ => None,
        }
    }

    fn str_arg(&self, f: &'a async_graphql::parser::types::Field, arg: &str) -> Option<String> {
        let v = f
            .arguments
            .iter()
            .find(|(n, _)| n.node.as_str() == arg)
            .map(|(_, v)| &v.node)?;
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Variable(var) => match self.variables.get(var) {
                Some(ConstValue::String(s)) => Some(s.clone()),
                _ => None,
            },
            _ => None,
        }
    }
}

/// An object introspection can return, as the schema really has it.
#[derive(Clone, Copy)]
enum IObj<'a> {
    Schema,
    Type(MetaTypeName<'a>),
    Field(&'a async_graphql::registry::MetaField),
    Input(&'a MetaInputValue),
    Directive(&'a async_graphql::registry::MetaDirective),
    Leafy,
}

/// Counts, exactly and with a budget, the values an introspection selection produces.
struct Introspection<'a> {
    registry: &'a Registry,
    doc: &'a ExecutableDocument,
    left: u64,
    nesting: u32,
    max_nesting: u32,
}

impl<'a> Introspection<'a> {
    fn spend(&mut self) -> Result<(), Refusal> {
        if self.left == 0 {
            return Err(Refusal::TooCostly(
                "the introspection query asks for more than the schema's own description".into(),
            ));
        }
        self.left -= 1;
        Ok(())
    }

    fn set(&mut self, set: &'a SelectionSet, obj: IObj<'a>) -> Result<(), Refusal> {
        if self.nesting >= self.max_nesting * 2 {
            return Err(Refusal::TooCostly("introspection nested too deep".into()));
        }
        self.nesting += 1;
        for sel in &set.items {
            self.spend()?;
            match &sel.node {
                Selection::Field(f) => {
                    let f = &f.node;
                    let sub = &f.selection_set.node;
                    if sub.items.is_empty() {
                        continue;
                    }
                    for child in self.children(obj, f.name.node.as_str()) {
                        self.set(sub, child)?;
                    }
                }
                Selection::FragmentSpread(s) => {
                    if let Some(def) = self.doc.fragments.get(&s.node.fragment_name.node) {
                        self.set(&def.node.selection_set.node, obj)?;
                    }
                }
                Selection::InlineFragment(i) => self.set(&i.node.selection_set.node, obj)?,
            }
        }
        self.nesting -= 1;
        Ok(())
    }

    fn named(&self, name: &'a str) -> Option<&'a MetaType> {
        self.registry.types.get(name)
    }

    fn children(&self, obj: IObj<'a>, field: &str) -> Vec<IObj<'a>> {
        let ty = |n: &'a str| IObj::Type(MetaTypeName::create(n));
        let input = |m: &'a Inputs| m.values().map(IObj::Input).collect();
        match (obj, field) {
            (IObj::Schema, "types") => self
                .registry
                .types
                .keys()
                .map(|k| IObj::Type(MetaTypeName::Named(k)))
                .collect(),
            (IObj::Schema, "queryType") => vec![ty(&self.registry.query_type)],
            (IObj::Schema, "mutationType") => self
                .registry
                .mutation_type
                .as_deref()
                .map(ty)
                .into_iter()
                .collect(),
            (IObj::Schema, "subscriptionType") => self
                .registry
                .subscription_type
                .as_deref()
                .map(ty)
                .into_iter()
                .collect(),
            (IObj::Schema, "directives") => self
                .registry
                .directives
                .values()
                .map(IObj::Directive)
                .collect(),
            (IObj::Type(MetaTypeName::Named(n)), f) => match (self.named(n), f) {
                (Some(t), "fields") => t
                    .fields()
                    .map(|fs| fs.values().map(IObj::Field).collect())
                    .unwrap_or_default(),
                (Some(MetaType::InputObject { input_fields, .. }), "inputFields") => {
                    input(input_fields)
                }
                (Some(MetaType::Enum { enum_values, .. }), "enumValues") => {
                    enum_values.values().map(|_| IObj::Leafy).collect()
                }
                (Some(MetaType::Interface { possible_types, .. }), "possibleTypes")
                | (Some(MetaType::Union { possible_types, .. }), "possibleTypes") => {
                    possible_types.iter().map(|p| ty(p)).collect()
                }
                (Some(_), "interfaces") => self
                    .registry
                    .implements
                    .get(n)
                    .map(|s| s.iter().map(|p| ty(p)).collect())
                    .unwrap_or_default(),
                _ => vec![],
            },
            (IObj::Type(MetaTypeName::List(inner) | MetaTypeName::NonNull(inner)), "ofType") => {
                vec![ty(inner)]
            }
            (IObj::Field(m), "args") => input(&m.args),
            (IObj::Field(m), "type") => vec![ty(&m.ty)],
            (IObj::Input(m), "type") => vec![ty(&m.ty)],
            (IObj::Directive(d), "args") => input(&d.args),
            _ => vec![],
        }
    }
}

#[cfg(test)]
mod tests;
