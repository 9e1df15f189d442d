// The baseline page's script: follows the plugin's event stream and opens a WebSocket to
// every listed server. Each server is an <li data-server-id=ID data-state=…>; the
// discovery benchmark waits for `data-state="connected"` on the new server's row.

const list = /** @type {HTMLUListElement} */ (document.getElementById('servers'));
/** @type {Map<string, {row: HTMLLIElement, socket: WebSocket}>} */
const shown = new Map();

new EventSource('/api/registry/events').addEventListener('servers', (event) => {
  const { servers } = JSON.parse(/** @type {MessageEvent} */ (event).data);
  const ids = new Set(servers.map((/** @type {{id: string}} */ s) => s.id));
  for (const [id, { row, socket }] of shown) {
    if (ids.has(id)) continue;
    socket.close();
    row.remove();
    shown.delete(id);
  }
  for (const server of servers) {
    if (shown.has(server.id)) continue;
    const row = document.createElement('li');
    row.dataset.serverId = server.id;
    row.dataset.state = 'connecting';
    row.textContent = `${server.id} ${server.url}`;
    const socket = new WebSocket(server.url);
    socket.onopen = () => (row.dataset.state = 'connected');
    socket.onclose = () => (row.dataset.state = 'closed');
    list.append(row);
    shown.set(server.id, { row, socket });
  }
});
