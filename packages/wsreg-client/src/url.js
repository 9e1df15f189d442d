// URLs of the registry API (the same routes for `wsreg serve` and the Vite plugin).

/**
 * `${base}${route}${suffix}?project=…&kind=…`, leaving out empty filters.
 * `base` may be '' (this page's origin) or an origin such as
 * `http://127.0.0.1:7777` (another registry endpoint on this machine).
 * @param {string} base
 * @param {string} route
 * @param {string} suffix '' or '/events'
 * @param {{ project?: string | null, kind?: string | null }} [filter]
 * @returns {string}
 */
export function registryUrl(base, route, suffix, filter = {}) {
  const params = new URLSearchParams();
  if (filter.project) params.set('project', filter.project);
  if (filter.kind) params.set('kind', filter.kind);
  const query = params.toString();
  const trimmedBase = base.replace(/\/+$/, '');
  const trimmedRoute = `/${route.replace(/^\/+|\/+$/g, '')}`;
  return `${trimmedBase}${trimmedRoute}${suffix}${query ? `?${query}` : ''}`;
}
