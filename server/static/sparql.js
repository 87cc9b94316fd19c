/* The SPARQL query page: a highlighted editor, prefixes and examples one click away, results
   fetched from /sparql and shown as a table. No library, no build step. Without JavaScript
   the page still works: the form submits GET /sparql and the server renders the results. */
(function () {
  "use strict";
  var page = document.querySelector(".sparql-page");
  if (!page) return;
  var endpoint = page.getAttribute("data-endpoint");
  var ui = JSON.parse(page.getAttribute("data-ui"));
  var pluralRules = new Intl.PluralRules(document.documentElement.lang);

  /* "{n} rows" in the page's language: a word that changes with the number has a form per CLDR
     plural category (server/messages), as the server picks it with Babel */
  function plural(forms, n) {
    var form = typeof forms === "string" ? forms : (forms[pluralRules.select(n)] || forms.other);
    return form.replace("{n}", String(n));
  }
  var textarea = document.getElementById("query");
  var code = document.getElementById("highlight");
  var form = document.getElementById("query-form");
  var formatSelect = document.getElementById("format");
  var results = document.getElementById("results");
  var status = document.getElementById("status");

  /* ---- highlighting: a <pre> under a transparent <textarea> ---- */
  var TOKEN = new RegExp([
    "(#[^\\n]*)",                                                     // 1 comment
    "('''[\\s\\S]*?'''|\"\"\"[\\s\\S]*?\"\"\"|'(?:[^'\\\\\\n]|\\\\.)*'|\"(?:[^\"\\\\\\n]|\\\\.)*\")", // 2 string
    "(<[^<>\"{}|^`\\\\\\s]*>)",                                       // 3 IRI
    "([?$][\\w]+)",                                                   // 4 variable
    "([A-Za-z_][\\w.-]*:[\\w.:%-]*|:[\\w.:%-]*)",                     // 5 prefixed name
    "([A-Za-z_]+)",                                                   // 6 word
    "(\\d+(?:\\.\\d+)?(?:[eE][+-]?\\d+)?)"                            // 7 number
  ].join("|"), "g");
  var KEYWORDS = new Set(("SELECT ASK CONSTRUCT DESCRIBE WHERE PREFIX BASE FROM NAMED GRAPH OPTIONAL UNION MINUS " +
    "FILTER BIND VALUES SERVICE SILENT LIMIT OFFSET ORDER BY ASC DESC GROUP HAVING DISTINCT REDUCED AS NOT EXISTS IN " +
    "COUNT SUM MIN MAX AVG SAMPLE GROUP_CONCAT SEPARATOR UNDEF A TRUE FALSE LANG LANGMATCHES STR DATATYPE BOUND IRI URI " +
    "BNODE REGEX CONCAT CONTAINS STRSTARTS STRENDS STRLEN SUBSTR UCASE LCASE YEAR MONTH DAY HOURS MINUTES SECONDS TZ " +
    "TIMEZONE NOW COALESCE IF ISIRI ISURI ISBLANK ISLITERAL ISNUMERIC SAMETERM STRLANG STRDT REPLACE ENCODE_FOR_URI").split(" "));

  function escapeHtml(s) {
    return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }
  function highlight() {
    var text = textarea.value, out = "", last = 0, m;
    TOKEN.lastIndex = 0;
    while ((m = TOKEN.exec(text)) !== null) {
      if (m[0] === "") { TOKEN.lastIndex++; continue; }
      out += escapeHtml(text.slice(last, m.index));
      var cls = m[1] ? "c" : m[2] ? "s" : m[3] ? "i" : m[4] ? "v" : m[5] ? "p" :
        m[6] ? (KEYWORDS.has(m[6].toUpperCase()) ? "k" : "") : m[7] ? "n" : "";
      out += cls ? '<span class="t-' + cls + '">' + escapeHtml(m[0]) + "</span>" : escapeHtml(m[0]);
      last = TOKEN.lastIndex;
    }
    code.innerHTML = out + escapeHtml(text.slice(last)) + "\n";
    code.parentNode.scrollTop = textarea.scrollTop;
    code.parentNode.scrollLeft = textarea.scrollLeft;
  }
  document.getElementById("editor").classList.add("live");
  textarea.addEventListener("input", highlight);
  textarea.addEventListener("scroll", function () {
    code.parentNode.scrollTop = textarea.scrollTop;
    code.parentNode.scrollLeft = textarea.scrollLeft;
  });
  textarea.addEventListener("keydown", function (e) {
    if (e.key === "Tab" && !e.shiftKey) {
      e.preventDefault();
      insertAt("  ");
    } else if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      run();
    }
  });
  highlight();

  function insertAt(text) {
    var start = textarea.selectionStart, end = textarea.selectionEnd;
    textarea.value = textarea.value.slice(0, start) + text + textarea.value.slice(end);
    textarea.selectionStart = textarea.selectionEnd = start + text.length;
    highlight();
  }

  /* ---- prefixes: a click adds the declaration at the top (once) ---- */
  document.querySelectorAll("button.prefix").forEach(function (button) {
    button.addEventListener("click", function () {
      var prefix = button.getAttribute("data-prefix"), iri = button.getAttribute("data-iri");
      var declared = new RegExp("^\\s*PREFIX\\s+" + prefix.replace(/[-.]/g, "\\$&") + ":", "im");
      if (!declared.test(textarea.value)) {
        textarea.value = "PREFIX " + prefix + ": <" + iri + ">\n" + textarea.value;
      }
      highlight();
      textarea.focus();
    });
  });

  /* ---- examples: a click loads the query (and runs it) ---- */
  document.querySelectorAll("a.example").forEach(function (link) {
    link.addEventListener("click", function (e) {
      if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
      e.preventDefault();
      textarea.value = link.getAttribute("data-query");
      highlight();
      history.replaceState(null, "", "#" + link.getAttribute("data-slug"));
      run();
    });
  });

  /* ---- running a query ---- */
  form.addEventListener("submit", function (e) {
    if (formatSelect.value !== "html") return; // a download: let the browser GET it
    e.preventDefault();
    run();
  });

  var FORMATS = [["json", "JSON"], ["xml", "XML"], ["csv", "CSV"], ["tsv", "TSV"], ["turtle", "Turtle"],
                 ["ntriples", "N-Triples"], ["rdfxml", "RDF/XML"], ["jsonld", "JSON-LD"]];
  var GRAPH_FORMS = /^\s*(?:(?:#[^\n]*\n|PREFIX\s+[\w.-]*:\s*<[^>]*>|BASE\s*<[^>]*>)\s*)*(CONSTRUCT|DESCRIBE)\b/i;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var k in attrs || {}) node.setAttribute(k, attrs[k]);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function downloads(query, graph) {
    var p = el("p", {"class": "downloads"});
    FORMATS.forEach(function (f) {
      var isGraph = ["turtle", "ntriples", "rdfxml", "jsonld"].indexOf(f[0]) >= 0;
      if (isGraph !== graph) return;
      var a = el("a", {href: endpoint + "?query=" + encodeURIComponent(query) + "&format=" + f[0], "data-format": f[0]}, f[1]);
      p.appendChild(a);
      p.appendChild(document.createTextNode(" "));
    });
    return p;
  }

  function termCell(term) {
    var td = el("td");
    if (!term) return td;
    if (term.type === "uri") {
      var href = term.value, base = page.getAttribute("data-base");
      if (base && href.indexOf(base) === 0) href = "/" + href.slice(base.length);
      if (/^(https?:\/\/|\/)/.test(href)) td.appendChild(el("a", {href: href}, term.value));
      else td.appendChild(el("span", {"class": "uri"}, term.value));
    } else if (term.type === "literal") {
      var span = el("span", {"class": "literal"}, term.value);
      if (term["xml:lang"]) { span.setAttribute("lang", term["xml:lang"]); span.setAttribute("dir", "auto"); }
      td.appendChild(span);
      var suffix = term["xml:lang"] ? "@" + term["xml:lang"] :
        (term.datatype ? "^^" + term.datatype : "");
      if (suffix) td.appendChild(el("span", {"class": "suffix"}, suffix));
    } else if (term.type === "bnode") {
      td.appendChild(el("span", {"class": "bnode"}, "_:" + term.value));
    } else {
      td.appendChild(el("span", {}, JSON.stringify(term.value)));
    }
    return td;
  }

  function showTable(data, truncated) {
    if (truncated) results.appendChild(el("p", {"class": "warning"}, ui.truncated));
    if ("boolean" in data) {
      results.appendChild(el("p", {"class": "boolean"}, data.boolean ? ui["true"] : ui["false"]));
      return;
    }
    var vars = data.head.vars, rows = data.results.bindings;
    results.appendChild(el("p", {"class": "count"}, plural(ui.rows, rows.length)));
    var wrap = el("div", {"class": "table-wrap"}), table = el("table", {dir: "ltr"});
    var tr = el("tr");
    vars.forEach(function (v) { tr.appendChild(el("th", {}, "?" + v)); });
    table.appendChild(el("thead")).appendChild(tr);
    var tbody = el("tbody");
    rows.forEach(function (b) {
      var row = el("tr");
      vars.forEach(function (v) { row.appendChild(termCell(b[v])); });
      tbody.appendChild(row);
    });
    table.appendChild(tbody);
    wrap.appendChild(table);
    results.appendChild(wrap);
  }

  function showError(title, detail) {
    var box = el("div", {"class": "error", role: "alert"});
    box.appendChild(el("strong", {}, title || ui.error));
    box.appendChild(el("pre", {dir: "ltr"}, detail || ""));
    results.appendChild(box);
  }

  function run() {
    var query = textarea.value;
    var graph = GRAPH_FORMS.test(query);
    status.textContent = "…";
    var started = performance.now();
    fetch(endpoint, {
      method: "POST",
      headers: {"Content-Type": "application/x-www-form-urlencoded",
                "Accept": graph ? "text/turtle" : "application/sparql-results+json"},
      body: "query=" + encodeURIComponent(query)
    }).then(function (response) {
      var truncated = response.headers.get("X-Result-Truncated") === "true";
      var type = response.headers.get("Content-Type") || "";
      return response.text().then(function (body) {
        results.textContent = "";
        status.textContent = Math.round(performance.now() - started) + " ms";
        results.appendChild(downloads(query, graph));
        if (!response.ok) {
          var problem = {};
          try { problem = JSON.parse(body); } catch (err) { problem = {title: response.status + "", detail: body}; }
          showError(problem.title, problem.detail);
        } else if (type.indexOf("json") >= 0) {
          showTable(JSON.parse(body), truncated);
        } else {
          if (truncated) results.appendChild(el("p", {"class": "warning"}, ui.truncated));
          results.appendChild(el("pre", {"class": "graph", dir: "ltr"}, body));
        }
      });
    }).catch(function (err) {
      status.textContent = "";
      results.textContent = "";
      showError(ui.error, String(err));
    });
  }

  if (location.hash) {
    var chosen = document.querySelector('a.example[data-slug="' + location.hash.slice(1).replace(/"/g, "") + '"]');
    if (chosen) { textarea.value = chosen.getAttribute("data-query"); highlight(); }
  }
})();
