/* photocluster review: selection, actions and keyboard shortcuts. Plain JS, no build step.
 * Every action is one POST to /api/ACTION with the token in the X-Review-Token header and what
 * the page saw (names, the person each selected face was in, the decision Undo names); the
 * server refuses it when the catalog changed since. On success the page reloads (fresh data). */
"use strict";
(function () {
  const token = document.querySelector('meta[name="review-token"]').content;
  const page = document.body.dataset.page;
  const readOnly = document.body.dataset.readOnly === "true";
  const flash = document.getElementById("flash");

  function url(path, params) {
    const q = new URLSearchParams(params || {});
    q.set("token", token);
    return path + "?" + q.toString();
  }

  function show(message, kind, choices) {
    flash.hidden = false;
    flash.className = kind || "info";
    flash.textContent = message;
    for (const [label, run] of choices || []) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = label;
      b.addEventListener("click", run);
      flash.append(" ", b);
    }
    if (choices && choices.length) {
      const cancel = document.createElement("button");
      cancel.type = "button";
      cancel.textContent = "Cancel";
      cancel.addEventListener("click", () => { flash.hidden = true; });
      flash.append(" ", cancel);
    }
  }

  const done = sessionStorage.getItem("review-flash");
  if (done) {
    sessionStorage.removeItem("review-flash");
    show(done, "ok");
  }

  let busy = false;
  async function act(action, body, onConflict) {
    if (readOnly || busy) return;
    busy = true;
    show("Working…", "info");
    let data = {};
    let status = 0;
    try {
      const r = await fetch("/api/" + action, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-Review-Token": token },
        body: JSON.stringify(body),
      });
      status = r.status;
      data = await r.json().catch(() => ({ error: "The server answered " + r.status + "." }));
    } catch (e) {
      busy = false;
      show("The review server cannot be reached (stopped?). Nothing was changed.", "error");
      return;
    }
    busy = false;
    if (status === 200) {
      const hint = action === "undo" ? "" : " (u undoes it)";
      sessionStorage.setItem("review-flash", "Done: " + data.message + "." + hint);
      if (data.go && data.go !== location.pathname) location.assign(url(data.go));
      else location.reload();
      return;
    }
    if (onConflict && onConflict(data)) return;
    show(data.error || "Refused (" + status + ").", "error");
  }

  // --- Undo and help, on every page ---------------------------------------------------------
  const undoButton = document.getElementById("undo");
  function undo() {
    if (!undoButton || undoButton.disabled) return show("Nothing to undo.", "info");
    act("undo", { expect: Number(undoButton.dataset.expect) });
  }
  if (undoButton) undoButton.addEventListener("click", undo);
  const help = document.getElementById("help");
  document.getElementById("help-button").addEventListener("click", () => { help.hidden = !help.hidden; });

  // --- faces: selection (click, shift-click, a) and the photo on hover ---------------------
  const tiles = Array.from(document.querySelectorAll(".tile[data-face]"));
  let anchor = null;
  let lastClicked = null;
  const selcount = document.getElementById("selcount");

  function selected() {
    return tiles.filter((t) => t.classList.contains("selected"));
  }
  function refresh() {
    const n = selected().length;
    if (selcount) selcount.textContent = n + " selected";
    document.querySelectorAll("#selbar button:not(#select-all)").forEach((b) => { b.disabled = n === 0; });
  }
  function seen(list) {
    const out = {};
    for (const t of list) out[t.dataset.face] = t.dataset.person === "" ? null : Number(t.dataset.person);
    return out;
  }
  tiles.forEach((tile, i) => {
    tile.addEventListener("click", (ev) => {
      if (ev.target.closest("a, button")) return;
      if (ev.shiftKey && anchor !== null) {
        const [a, b] = [Math.min(anchor, i), Math.max(anchor, i)];
        for (let k = a; k <= b; k++) tiles[k].classList.add("selected");
      } else {
        tile.classList.toggle("selected");
        anchor = i;
      }
      lastClicked = tile;
      refresh();
    });
  });
  function selectAll() {
    const all = tiles.length > 0 && tiles.every((t) => t.classList.contains("selected"));
    tiles.forEach((t) => t.classList.toggle("selected", !all));
    refresh();
  }
  const selectAllButton = document.getElementById("select-all");
  if (selectAllButton) selectAllButton.addEventListener("click", selectAll);
  refresh();

  const preview = document.getElementById("preview");
  let hoverTimer = null;
  tiles.forEach((tile) => {
    tile.addEventListener("mouseenter", () => {
      hoverTimer = setTimeout(() => {
        const img = preview.querySelector("img");
        img.src = tile.dataset.photoUrl;
        const r = tile.getBoundingClientRect();
        preview.style.left = Math.min(r.right + 8, window.innerWidth - 420) + "px";
        preview.style.top = Math.max(8, Math.min(r.top, window.innerHeight - 420)) + "px";
        preview.hidden = false;
      }, 450);
    });
    tile.addEventListener("mouseleave", () => { clearTimeout(hoverTimer); preview.hidden = true; });
  });

  // --- actions on selected faces -----------------------------------------------------------
  const person = document.getElementById("person");
  function requireSelection() {
    const list = selected();
    if (!list.length) show("Select faces first: click, shift-click for a range, a for all.", "error");
    return list;
  }
  const rejectButton = document.getElementById("reject");
  function rejectSelected() {
    const list = requireSelection();
    if (list.length) act("reject", { faces: seen(list) });
  }
  if (rejectButton) rejectButton.addEventListener("click", rejectSelected);

  function assignTo(list, to, create) {
    act("assign", { faces: seen(list), to: to, create: create }, (data) => {
      if (data.holder === undefined) return false;
      show(data.error, "error", [["Add to " + data.holder_name, () => act("assign", { faces: seen(list), to: data.holder })]]);
      return true;
    });
  }
  const assignForm = document.getElementById("assign-form");
  if (assignForm) assignForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const list = requireSelection();
    const to = document.getElementById("assign-to").value.trim();
    if (!list.length) return;
    if (!to) return show("Type whom these faces are: a name or a person id.", "error");
    assignTo(list, /^\d+$/.test(to) ? Number(to) : to, false);
  });
  const createForm = document.getElementById("create-form");
  if (createForm) createForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const list = requireSelection();
    const name = document.getElementById("create-name").value.trim();
    if (!list.length) return;
    if (!name) return show("Type the new person's name.", "error");
    assignTo(list, name, true);
  });

  // --- person: name, merge, hide, suggestion -----------------------------------------------
  if (person && !readOnly) {
    const pid = Number(person.dataset.id);
    const seenName = person.dataset.named === "true" ? person.dataset.name : null;
    function merge(into, intoSeen, name) {
      const body = { person: pid, into: into, seen: seenName };
      if (intoSeen !== undefined) body.into_seen = intoSeen;
      if (name) body.name = name;
      act("merge", body, (data) => {
        if (!data.names) return false;
        show(data.error, "error", data.names.map((n) => ["Keep " + n, () => merge(into, intoSeen, n)]));
        return true;
      });
    }
    document.getElementById("rename-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const name = document.getElementById("rename").value;
      if (!name.trim()) return show("Type a name.", "error");
      act("rename", { person: pid, name: name, seen: seenName }, (data) => {
        if (data.holder === undefined) return false;
        show(data.error, "error", [["Merge into " + data.holder_name, () => merge(data.holder, data.holder_name)]]);
        return true;
      });
    });
    document.getElementById("merge-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const into = document.getElementById("merge-into").value.trim();
      if (!into) return show("Type whom to merge into: a name or a person id.", "error");
      merge(into);
    });
    const hide = document.getElementById("hide");
    hide.addEventListener("click", () => {
      act("hide", { person: pid, hidden: hide.dataset.hidden !== "true" });
    });
    const box = document.getElementById("suggestion");
    fetch(url("/api/person/" + pid + "/suggestion"))
      .then((r) => r.json())
      .then((data) => {
        const s = data.suggestion;
        if (!s) return;
        box.hidden = false;
        if (s.chance === null || s.chance === undefined) {
          box.textContent = "Looks like " + s.name + " (distance " + s.score.toFixed(2) + "). ";
        } else {
          const who = s.likely ? "Looks like " : "May be ";
          box.textContent = who + s.name + " (chance " + Math.round(100 * s.chance) + " %). ";
        }
        const yes = document.createElement("button");
        yes.id = "accept-suggestion";
        yes.textContent = "Yes, merge into " + s.name + " (y)";
        yes.addEventListener("click", () => merge(s.id, s.name));
        const no = document.createElement("button");
        no.textContent = "No";
        no.addEventListener("click", () => { box.hidden = true; });
        box.append(yes, " ", no);
      })
      .catch(() => {});
  }

  // --- unassigned: accept / refuse one by one or a whole group -----------------------------
  document.querySelectorAll("section.group").forEach((group) => {
    const candidate = group.dataset.candidate === "" ? null : Number(group.dataset.candidate);
    if (candidate === null) return;
    const faces = Array.from(group.querySelectorAll(".tile[data-face]"));
    const acceptAll = group.querySelector(".accept-all");
    const refuseAll = group.querySelector(".refuse-all");
    if (acceptAll) acceptAll.addEventListener("click", () => act("assign", { faces: seen(faces), to: candidate }));
    if (refuseAll) refuseAll.addEventListener("click", () => act("reject", { faces: seen(faces), person: candidate }));
    faces.forEach((t) => {
      const yes = t.querySelector(".accept");
      const no = t.querySelector(".refuse");
      if (yes) yes.addEventListener("click", () => act("assign", { faces: seen([t]), to: candidate }));
      if (no) no.addEventListener("click", () => act("reject", { faces: seen([t]), person: candidate }));
    });
  });

  // --- keyboard ---------------------------------------------------------------------------
  function follow(rel) {
    const a = document.querySelector('.pager a[rel="' + rel + '"]');
    if (a) location.assign(a.href);
  }
  function focus(id) {
    const el = document.getElementById(id);
    if (el) { el.focus(); return true; }
    return false;
  }
  document.addEventListener("keydown", (ev) => {
    const typing = ev.target.closest && ev.target.closest("input, textarea, select");
    if (ev.key === "Escape") {
      if (typing) ev.target.blur();
      tiles.forEach((t) => t.classList.remove("selected"));
      help.hidden = true;
      flash.hidden = true;
      refresh();
      return;
    }
    if (typing || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const key = ev.key;
    let handled = true;
    if (key === "?") help.hidden = !help.hidden;
    else if (key === "u") undo();
    else if (key === "a" && tiles.length) selectAll();
    else if (key === "r" && rejectButton) rejectSelected();
    else if (key === "g") handled = focus("assign-to");
    else if (key === "c") handled = focus("create-name");
    else if (key === "n") handled = focus("rename");
    else if (key === "m") handled = focus("merge-into");
    else if (key === "h" && document.getElementById("hide")) document.getElementById("hide").click();
    else if (key === "y") {
      const b = document.getElementById("accept-suggestion") || document.querySelector("section.group.likely .accept-all");
      if (b) b.click(); else handled = false;
    } else if (key === "j" || key === "ArrowRight") follow("next");
    else if (key === "k" || key === "ArrowLeft") follow("prev");
    else if (key === "p" && lastClicked) location.assign(lastClicked.querySelector(".photo-link").href);
    else handled = false;
    if (handled) ev.preventDefault();
  });
})();
