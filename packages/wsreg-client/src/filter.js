// Keeping the servers of one project and/or kind.

/**
 * @typedef {import('../index.js').ServerEntry} ServerEntry
 */

/**
 * @param {readonly ServerEntry[]} servers
 * @param {{ project?: string | null, kind?: string | null }} [filter] empty values match all
 * @returns {ServerEntry[]}
 */
export function filterServers(servers, filter = {}) {
  const { project, kind } = filter;
  return servers.filter((s) => (!project || s.project === project) && (!kind || s.kind === kind));
}
