//! What the importer must know about the server's configuration: the routes a row may
//! name, which of them log in with a master user, the default route and the row limit.

use thiserror::Error;

/// Most user rows one import may have unless configured otherwise.
pub const DEFAULT_ROW_LIMIT: usize = 10_000;

/// One configured migration route, as far as the importer cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRoute {
    /// The route's name, as written in the configuration.
    pub name: String,
    /// The source server profile has master-user credentials, so a row may leave the
    /// source password empty.
    pub source_master_user: bool,
    /// The same for the target server.
    pub target_master_user: bool,
}

impl ImportRoute {
    /// A route without master users: every row needs both passwords.
    pub fn new(name: impl Into<String>) -> Self {
        ImportRoute {
            name: name.into(),
            source_master_user: false,
            target_master_user: false,
        }
    }

    /// Marks the source side as having a master user.
    pub fn with_source_master_user(mut self) -> Self {
        self.source_master_user = true;
        self
    }

    /// Marks the target side as having a master user.
    pub fn with_target_master_user(mut self) -> Self {
        self.target_master_user = true;
        self
    }
}

/// A context that cannot be used for an import.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ContextError {
    #[error("no migration route is configured; add one before importing users")]
    NoRoutes,
    #[error("route \"{0}\" is configured twice (names are compared without regard to case)")]
    DuplicateRoute(String),
    #[error("the default route \"{0}\" is not one of the configured routes")]
    UnknownDefaultRoute(String),
    #[error("the row limit must be at least 1")]
    ZeroRowLimit,
}

/// Everything [`parse_users_csv`](super::parse_users_csv) checks rows against. Only built
/// valid: at least one route, distinct names, a default that exists.
#[derive(Debug, Clone)]
pub struct ImportContext {
    routes: Vec<ImportRoute>,
    default_route: Option<usize>,
    row_limit: usize,
}

impl ImportContext {
    /// A context with these routes, no default route (unless there is exactly one route)
    /// and the default row limit.
    pub fn new(routes: impl IntoIterator<Item = ImportRoute>) -> Result<Self, ContextError> {
        let routes: Vec<ImportRoute> = routes.into_iter().collect();
        if routes.is_empty() {
            return Err(ContextError::NoRoutes);
        }
        for (i, route) in routes.iter().enumerate() {
            if routes[..i]
                .iter()
                .any(|earlier| earlier.name.to_lowercase() == route.name.to_lowercase())
            {
                return Err(ContextError::DuplicateRoute(route.name.clone()));
            }
        }
        Ok(ImportContext {
            // A single route is the obvious default; the file need not name it.
            default_route: (routes.len() == 1).then_some(0),
            routes,
            row_limit: DEFAULT_ROW_LIMIT,
        })
    }

    /// Rows with an empty or absent route column go through this route.
    pub fn with_default_route(mut self, name: &str) -> Result<Self, ContextError> {
        let index = self
            .route_index(name)
            .ok_or_else(|| ContextError::UnknownDefaultRoute(name.to_owned()))?;
        self.default_route = Some(index);
        Ok(self)
    }

    /// At most this many user rows per file (the header and blank lines do not count).
    pub fn with_row_limit(mut self, limit: usize) -> Result<Self, ContextError> {
        if limit == 0 {
            return Err(ContextError::ZeroRowLimit);
        }
        self.row_limit = limit;
        Ok(self)
    }

    pub fn routes(&self) -> &[ImportRoute] {
        &self.routes
    }

    pub fn default_route(&self) -> Option<&ImportRoute> {
        self.default_route.map(|i| &self.routes[i])
    }

    pub fn row_limit(&self) -> usize {
        self.row_limit
    }

    /// The route with this name, compared without regard to case.
    pub fn route(&self, name: &str) -> Option<&ImportRoute> {
        self.route_index(name).map(|i| &self.routes[i])
    }

    /// `a, b, c`: the configured route names, for messages.
    pub(super) fn route_names(&self) -> String {
        self.routes
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn route_index(&self, name: &str) -> Option<usize> {
        let wanted = name.to_lowercase();
        self.routes
            .iter()
            .position(|r| r.name.to_lowercase() == wanted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_context_needs_a_route() {
        assert_eq!(ImportContext::new([]).unwrap_err(), ContextError::NoRoutes);
    }

    #[test]
    fn a_single_route_is_the_default() {
        let ctx = ImportContext::new([ImportRoute::new("main")]).unwrap();
        assert_eq!(ctx.default_route().unwrap().name, "main");
    }

    #[test]
    fn several_routes_have_no_default_until_one_is_chosen() {
        let ctx = ImportContext::new([ImportRoute::new("a"), ImportRoute::new("b")]).unwrap();
        assert!(ctx.default_route().is_none());
        let ctx = ctx.with_default_route("B").unwrap();
        assert_eq!(ctx.default_route().unwrap().name, "b");
    }

    #[test]
    fn a_default_route_must_exist() {
        let ctx = ImportContext::new([ImportRoute::new("a")]).unwrap();
        assert_eq!(
            ctx.with_default_route("z").unwrap_err(),
            ContextError::UnknownDefaultRoute("z".into())
        );
    }

    #[test]
    fn route_names_are_distinct_without_regard_to_case() {
        let err =
            ImportContext::new([ImportRoute::new("Main"), ImportRoute::new("main")]).unwrap_err();
        assert_eq!(err, ContextError::DuplicateRoute("main".into()));
    }

    #[test]
    fn the_row_limit_is_at_least_one() {
        let ctx = ImportContext::new([ImportRoute::new("a")]).unwrap();
        assert_eq!(ctx.row_limit(), DEFAULT_ROW_LIMIT);
        assert_eq!(
            ctx.with_row_limit(0).unwrap_err(),
            ContextError::ZeroRowLimit
        );
    }
}
