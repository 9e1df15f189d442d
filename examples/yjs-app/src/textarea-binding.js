// Binds a Y.Text to a <textarea>: local typing becomes the smallest Yjs edit (the
// changed middle between the common prefix and suffix), and remote edits rewrite the
// textarea while keeping the caret where the user had it (shifted by the edits before it).

/**
 * @param {import('yjs').Text} ytext
 * @param {HTMLTextAreaElement} textarea
 * @returns {() => void} unbinds
 */
export function bindTextarea(ytext, textarea) {
  const doc = /** @type {import('yjs').Doc} */ (ytext.doc);
  textarea.value = ytext.toString();

  const onInput = () => {
    const before = ytext.toString();
    const after = textarea.value;
    let start = 0;
    while (start < before.length && start < after.length && before[start] === after[start]) start++;
    let endBefore = before.length;
    let endAfter = after.length;
    while (endBefore > start && endAfter > start && before[endBefore - 1] === after[endAfter - 1]) {
      endBefore--;
      endAfter--;
    }
    doc.transact(() => {
      if (endBefore > start) ytext.delete(start, endBefore - start);
      if (endAfter > start) ytext.insert(start, after.slice(start, endAfter));
    }, textarea);
  };

  /** @param {import('yjs').YTextEvent} event @param {import('yjs').Transaction} txn */
  const onRemote = (event, txn) => {
    if (txn.origin === textarea) return;
    let { selectionStart: start, selectionEnd: end } = textarea;
    let at = 0;
    for (const op of event.delta) {
      if (op.retain) {
        at += op.retain;
      } else if (typeof op.insert === 'string') {
        const n = op.insert.length;
        if (at < start) start += n;
        if (at < end) end += n;
        at += n;
      } else if (op.delete) {
        if (at < start) start -= Math.min(op.delete, start - at);
        if (at < end) end -= Math.min(op.delete, end - at);
      }
    }
    textarea.value = ytext.toString();
    if (document.activeElement === textarea) textarea.setSelectionRange(start, end);
  };

  textarea.addEventListener('input', onInput);
  ytext.observe(onRemote);
  return () => {
    textarea.removeEventListener('input', onInput);
    ytext.unobserve(onRemote);
  };
}
