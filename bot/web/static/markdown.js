// A small Markdown renderer for the model's evaluation report: headings, paragraphs, lists,
// pipe tables, fenced code, `code`, **bold**, *italic*, links and images. It builds DOM nodes
// with dom.js's `el` (text is always a text node, never parsed as HTML), so raw HTML in the
// Markdown shows as text and only http(s)/mailto links become links: nothing can inject script.
// Hand-written instead of a library because the dashboard has no build step and no third-party
// script, and the report uses only this subset (what it does not know stays readable text).

import { el } from "./dom.js";

const FENCE = /^\s*(```|~~~)/;
const HEADING = /^(#{1,6})\s+(.*?)\s*#*\s*$/;
const TABLE_RULE = /^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$/;
const BULLET = /^\s*[-*+]\s+(.*)$/;
const NUMBERED = /^\s*\d{1,9}[.)]\s+(.*)$/;
const RULE = /^\s*([-*_])(\s*\1){2,}\s*$/;
const QUOTE = /^\s*>\s?(.*)$/;
const SAFE_HREF = /^(https?:\/\/|mailto:)/i;

// Inline patterns, tried together: the earliest match wins, ties go to the first listed.
const INLINE = [
  ["code", /`([^`]+)`/],
  ["image", /!\[([^\]]*)\]\(\s*([^)\s]+)(?:\s+"[^"]*")?\s*\)/],
  ["link", /\[([^\]]+)\]\(\s*([^)\s]+)(?:\s+"[^"]*")?\s*\)/],
  ["strong", /\*\*(?=\S)(.+?)\*\*|__(?=\S)(.+?)__/],
  ["em", /\*(?=[^\s*])([^*]+?)\*/],
];

// `options.image(src, alt)` returns the node for an image (or null to show its alt text);
// `options.headingOffset` shifts heading levels (1: a `#` becomes an <h2> below the page's <h1>).
export function renderMarkdown(text, options = {}) {
  const lines = String(text).replace(/\r\n?/g, "\n").split("\n");
  const blocks = [];
  let index = 0;
  while (index < lines.length) {
    const line = lines[index];
    if (!line.trim()) {
      index += 1;
    } else if (FENCE.test(line)) {
      const fence = FENCE.exec(line)[1];
      const body = [];
      index += 1;
      while (index < lines.length && !lines[index].trim().startsWith(fence)) body.push(lines[index++]);
      index += 1;
      blocks.push(el("pre", {}, el("code", {}, body.join("\n"))));
    } else if (HEADING.test(line)) {
      const [, hashes, content] = HEADING.exec(line);
      const level = Math.min(6, hashes.length + (options.headingOffset ?? 1));
      blocks.push(el(`h${level}`, {}, inline(content, options)));
      index += 1;
    } else if (line.includes("|") && index + 1 < lines.length && TABLE_RULE.test(lines[index + 1])) {
      const header = cells(line);
      index += 2;
      const rows = [];
      while (index < lines.length && lines[index].includes("|") && lines[index].trim()) rows.push(cells(lines[index++]));
      blocks.push(
        el(
          "table",
          {},
          el("thead", {}, el("tr", {}, header.map((cell) => el("th", {}, inline(cell, options))))),
          el("tbody", {}, rows.map((row) => el("tr", {}, header.map((_, i) => el("td", {}, inline(row[i] ?? "", options)))))),
        ),
      );
    } else if (RULE.test(line)) {
      blocks.push(el("hr", {}));
      index += 1;
    } else if (BULLET.test(line) || NUMBERED.test(line)) {
      const pattern = BULLET.test(line) ? BULLET : NUMBERED;
      const items = [];
      while (index < lines.length && lines[index].trim()) {
        const item = pattern.exec(lines[index]);
        if (item) items.push(item[1]);
        else if (/^\s+\S/.test(lines[index]) && items.length) items[items.length - 1] += " " + lines[index].trim();
        else break;
        index += 1;
      }
      blocks.push(el(pattern === BULLET ? "ul" : "ol", {}, items.map((item) => el("li", {}, inline(item, options)))));
    } else if (QUOTE.test(line)) {
      const body = [];
      while (index < lines.length && QUOTE.test(lines[index])) body.push(QUOTE.exec(lines[index++])[1]);
      blocks.push(el("blockquote", {}, renderMarkdown(body.join("\n"), options)));
    } else {
      const body = [];
      while (index < lines.length && lines[index].trim() && !startsBlock(lines, index)) body.push(lines[index++].trim());
      if (!body.length) body.push(lines[index++].trim()); // a line no block took: keep it as text
      blocks.push(el("p", {}, inline(body.join(" "), options)));
    }
  }
  return el("div", { class: "markdown" }, blocks);
}

function startsBlock(lines, index) {
  const line = lines[index];
  return (
    FENCE.test(line) ||
    HEADING.test(line) ||
    RULE.test(line) ||
    BULLET.test(line) ||
    NUMBERED.test(line) ||
    QUOTE.test(line) ||
    (line.includes("|") && index + 1 < lines.length && TABLE_RULE.test(lines[index + 1]))
  );
}

function cells(line) {
  let row = line.trim();
  if (row.startsWith("|")) row = row.slice(1);
  if (row.endsWith("|") && !row.endsWith("\\|")) row = row.slice(0, -1);
  return row.split(/(?<!\\)\|/).map((cell) => cell.trim().replace(/\\\|/g, "|"));
}

function inline(text, options) {
  const nodes = [];
  let rest = text;
  while (rest) {
    let best = null;
    for (const [kind, pattern] of INLINE) {
      const match = pattern.exec(rest);
      if (match && (best === null || match.index < best.match.index)) best = { kind, match };
    }
    if (best === null) {
      nodes.push(rest);
      break;
    }
    const { kind, match } = best;
    if (match.index) nodes.push(rest.slice(0, match.index));
    nodes.push(inlineNode(kind, match, options));
    rest = rest.slice(match.index + match[0].length);
  }
  return nodes;
}

function inlineNode(kind, match, options) {
  switch (kind) {
    case "code":
      return el("code", {}, match[1]);
    case "image": {
      const [, alt, src] = match;
      return (options.image && options.image(src, alt)) || alt;
    }
    case "link": {
      const [, label, href] = match;
      const content = inline(label, options);
      return SAFE_HREF.test(href) ? el("a", { href, rel: "noopener noreferrer" }, content) : el("span", {}, content);
    }
    case "strong":
      return el("strong", {}, inline(match[1] ?? match[2], options));
    default:
      return el("em", {}, inline(match[1], options));
  }
}
