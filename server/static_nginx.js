// lodpub's static site under nginx: which exported file answers a request (njs, ES5 + let/const).
//
// The negotiation is the dynamic server's, ported: Werkzeug's Accept parsing (q-values,
// specificity, best_match for language tags) and server/negotiation.py's best_match (MIME types),
// choose_format and jsonld_profile. nginx then serves the chosen file itself (sendfile, gzip_static,
// ETag, Last-Modified, 304, Range) from the internal location /_lodpub/, where the recorded headers
// of that response are added from maps keyed by $lodpub_key. CONFIG (above) is written by
// server/static_nginx.py from export.json.
var fs = require('fs');

// --- Werkzeug's header parsing ----------------------------------------------------------------

var TOKEN = /^[!#$%&'*+\-.0-9A-Z^_`a-z|~]+$/;
var PARAM_KEY = /^([\w!#$%&'*+\-.^`|~]+)=/;
var PARAM_TOKEN = /^[\w!#$%&'*+\-.^`|~]+/;
var MIME_SPLIT = /\/|[ \t]*;[ \t]*/;

function unquote(value) {
    if (value.length >= 2 && value[0] === '"' && value[value.length - 1] === '"') {
        return value.slice(1, -1).replace(/\\(.)/g, '$1');
    }
    return value;
}

function quote(value) {
    if (value === '') { return '""'; }
    if (TOKEN.test(value)) { return value; }
    return '"' + value.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
}

// werkzeug.http.parse_list_header
function parseList(value) {
    var items = [], item = '', escape = false, inQuote = false;
    for (var i = 0; i < value.length; i++) {
        var c = value[i];
        if (escape) { escape = false; item += c; continue; }
        if (inQuote) {
            if (c === '\\') { escape = true; } else if (c === '"') { inQuote = false; }
            item += c;
            continue;
        }
        if (c === ',') { items.push(item); item = ''; continue; }
        if (c === '"') { inQuote = true; }
        item += c;
    }
    if (inQuote) { return []; }
    items.push(item);
    return items.map(function (s) { return s.replace(/^[ \t]+|[ \t]+$/g, ''); })
        .filter(function (s) { return s.length > 0; }).map(unquote);
}

// werkzeug.http.parse_options_header (without RFC 2231 continuations)
function parseOptions(value) {
    var at = value.indexOf(';');
    var main = (at < 0 ? value : value.slice(0, at)).replace(/^[ \t]+|[ \t]+$/g, '');
    var rest = at < 0 ? '' : value.slice(at + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    var options = {}, keys = [];
    if (!main || !rest) { return {value: main, options: options, keys: keys}; }
    var pos = 0;
    while (pos < rest.length) {
        var tail = rest.slice(pos), m = PARAM_KEY.exec(tail);
        if (m) {
            var key = m[1].toLowerCase();
            pos += m[0].length;
            tail = rest.slice(pos);
            var t = PARAM_TOKEN.exec(tail);
            if (t) {
                if (!(key in options)) { keys.push(key); }
                options[key] = t[0];
            } else if (tail[0] === '"') {
                var q = 1, closed = false;
                while (q < tail.length) {
                    if (tail.slice(q, q + 2) === '\\\\' || tail.slice(q, q + 2) === '\\"') { q += 2; }
                    else if (tail[q] === '"') { q += 1; closed = true; break; }
                    else { q += 1; }
                }
                if (!closed) { break; }
                if (!(key in options)) { keys.push(key); }
                options[key] = unquote(tail.slice(0, q));
                pos += q;
            }
        }
        var d = rest.slice(pos).search(/;[ \t]*/);
        if (d < 0) { break; }
        pos += d + rest.slice(pos + d).match(/^;[ \t]*/)[0].length;
    }
    return {value: main, options: options, keys: keys};
}

function compareTuples(a, b) {
    for (var i = 0; i < Math.min(a.length, b.length); i++) {
        if (a[i] !== b[i]) { return a[i] ? 1 : -1; }
    }
    return a.length - b.length;
}

// werkzeug.http.parse_accept_header: [[value, q]], sorted by (specificity, q) descending, stable.
function parseAccept(header, specificity) {
    if (!header) { return []; }
    var result = [];
    parseList(header).forEach(function (raw) {
        var parsed = parseOptions(raw), q = 1;
        if ('q' in parsed.options) {
            var text = parsed.options.q.replace(/^[ \t]+|[ \t]+$/g, '');
            if (!/^-?\d+(\.\d+)?$/.test(text)) { return; }
            q = parseFloat(text);
            if (q < 0 || q > 1) { return; }
        }
        var segments = [parsed.value];
        parsed.keys.forEach(function (k) { if (k !== 'q') { segments.push(k + '=' + quote(parsed.options[k])); } });
        result.push([segments.join('; '), q]);
    });
    return sortAccept(result, specificity);
}

function sortAccept(items, specificity) {
    var decorated = items.map(function (item, index) { return [specificity(item[0]), item[1], index, item]; });
    decorated.sort(function (a, b) {
        var c = compareTuples(b[0], a[0]);
        if (c !== 0) { return c; }
        if (a[1] !== b[1]) { return b[1] - a[1]; }
        return a[2] - b[2];
    });
    return decorated.map(function (d) { return d[3]; });
}

function mimeSpecificity(value) { return value.split(MIME_SPLIT).map(function (x) { return x !== '*'; }); }
function plainSpecificity(value) { return [value !== '*']; }

function normLang(value) { return value.toLowerCase().split(/[_-]/).join('-'); }
function langMatches(value, item) { return item === '*' || normLang(value) === normLang(item); }
function plainMatches(value, item) { return item === '*' || item.toLowerCase() === value.toLowerCase(); }

// werkzeug Accept.best_match (language tags)
function bestMatch(accept, matches, matchFn, specificity) {
    var result = null, bestQ = -1, bestSpec = [-1];
    matches.forEach(function (serverItem) {
        for (var k = 0; k < accept.length; k++) {
            if (matchFn(serverItem, accept[k][0])) {
                var q = accept[k][1], spec = specificity(accept[k][0]);
                if (q <= 0 || q < bestQ) { return; }
                if (q > bestQ || (bestSpec[0] === -1 ? true : compareTuples(spec, bestSpec) > 0)) {
                    result = serverItem; bestQ = q; bestSpec = spec;
                }
                return;
            }
        }
    });
    return result;
}

function mimeAccept(r) { return parseAccept(r.headersIn.Accept, mimeSpecificity); }

// werkzeug LanguageAccept.best_match, then the app's default (the source language)
function chosenLanguage(r, args) {
    var asked = args.lang || '';  // as server/i18n.py's asked_language reads it
    if (/^[\x00-\x7f]*$/.test(asked)) { asked = asked.toLowerCase().split(/[-_]/)[0]; }
    if (CONFIG.languages.all.indexOf(asked) >= 0) { return [asked, true]; }
    var accept = parseAccept(r.headersIn['Accept-Language'], plainSpecificity), all = CONFIG.languages.all;
    var found = bestMatch(accept, all, langMatches, plainSpecificity);
    if (found === null) {
        var primary = sortAccept(accept.map(function (a) { return [a[0].split(/[_-]/)[0], a[1]]; }),
                                 plainSpecificity);
        found = bestMatch(primary, all, plainMatches, plainSpecificity);
    }
    if (found === null) {
        var fallback = bestMatch(accept, all.map(function (l) { return l.split(/[_-]/)[0]; }), langMatches,
                                 plainSpecificity);
        if (fallback !== null) { found = all.filter(function (l) { return l.indexOf(fallback) === 0; })[0]; }
    }
    return [found || CONFIG.languages['default'], false];
}

// --- server/negotiation.py -------------------------------------------------------------------

function quality(accept, mediaType) {
    var parts = mediaType.split('/'), found = null;
    for (var k = 0; k < accept.length; k++) {
        var ranged = parseOptions(accept[k][0]).value, low = ranged.toLowerCase();
        var slash = low.indexOf('/'), rmain = slash < 0 ? low : low.slice(0, slash);
        var rsub = slash < 0 ? '' : low.slice(slash + 1), spec;
        if (ranged === '*' || (rmain === '*' && (rsub === '*' || rsub === ''))) { spec = 0; }
        else if (rmain === parts[0] && rsub === '*') { spec = 1; }
        else if (rmain === parts[0] && rsub === parts[1]) { spec = 2; }
        else { continue; }
        if (found === null || spec > found[0]) { found = [spec, accept[k][1]]; }
    }
    return found ? [found[1], found[0]] : [0, -1];
}

// server/negotiation.py best_match: highest q, then the more specific entry, then the offer listed
// first; an entry's parameters (charset, the JSON-LD profile) do not stop it matching
function bestOffer(accept, offers) {
    var best = null, chosen = null;
    offers.forEach(function (offer, order) {
        var q = quality(accept, offer);
        if (q[0] <= 0) { return; }
        var key = [q[0], q[1], -order];
        if (best === null || key[0] > best[0] || (key[0] === best[0] && (key[1] > best[1] ||
                (key[1] === best[1] && key[2] > best[2])))) { best = key; chosen = offer; }
    });
    return chosen;
}

function chooseFormat(accept) {
    var formats = CONFIG.formats, byMediaType = {}, offers = [];
    if (!accept.length) { return formats[0]; }
    formats.forEach(function (fmt) {
        [fmt.media_type].concat(fmt.aliases).forEach(function (m) {
            if (!(m in byMediaType)) { byMediaType[m] = fmt; offers.push(m); }
        });
    });
    var chosen = bestOffer(accept, offers);
    return chosen === null ? null : byMediaType[chosen];
}

function profileName(value) {
    var p = CONFIG.profiles;
    value = value.replace(/^\s+|\s+$/g, '');
    if (value.indexOf(p.namespace) === 0) { value = value.slice(p.namespace.length); }
    return p.names.indexOf(value) >= 0 ? value : null;
}

function jsonldProfile(accept, queryValue) {
    if (queryValue) {
        var name = profileName(queryValue);
        if (name) { return name; }
    }
    var best = null;
    accept.forEach(function (item, position) {
        var parsed = parseOptions(item[0]);
        if (parsed.value.toLowerCase() !== 'application/ld+json' || item[1] <= 0) { return; }
        (parsed.options.profile || '').split(/\s+/).forEach(function (iri) {
            var n = iri ? profileName(iri) : null;
            if (!n) { return; }
            var key = [-item[1], position, n];
            if (best === null || key[0] < best[0] || (key[0] === best[0] && (key[1] < best[1] ||
                    (key[1] === best[1] && key[2] < best[2])))) { best = key; }
        });
    });
    return best ? best[2] : CONFIG.profiles['default'];
}

// --- requests ---------------------------------------------------------------------------------

function queryArgs(r) {
    var args = {}, raw = r.variables.args || '';
    raw.split('&').forEach(function (pair) {
        if (!pair) { return; }
        var eq = pair.indexOf('='), k = eq < 0 ? pair : pair.slice(0, eq), v = eq < 0 ? '' : pair.slice(eq + 1);
        k = decode(k); v = decode(v);
        if (!(k in args)) { args[k] = v; }
    });
    return args;
}

function decode(s) {
    try { return decodeURIComponent(s.replace(/\+/g, ' ')); } catch (e) { return s.replace(/\+/g, ' '); }
}

function full(pattern) { return new RegExp('^(?:' + pattern + ')$'); }
var THING = full(CONFIG.patterns.thing), GRAPH = full(CONFIG.patterns.graph);
var EXTENSION = full(CONFIG.patterns.extension);

function exists(r, file) {
    try { fs.accessSync(r.variables.document_root + file); return true; } catch (e) { return false; }
}

function serve(r, key) { r.internalRedirect('/_lodpub/' + key); }

function setHeaders(r, headers, skip) {
    Object.keys(headers).forEach(function (name) {
        if (CONFIG.constant_headers.indexOf(name) < 0 && (!skip || skip.indexOf(name) < 0)) {
            r.headersOut[name] = headers[name];
        }
    });
}

function wantsHtml(r) { return bestOffer(mimeAccept(r), CONFIG.offers.error) === 'text/html'; }

function htmlEscape(s) {
    return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&#34;')
        .replace(/'/g, '&#39;');
}

// An exported error answer: an HTML page in the reader's language (as the app chooses it), or
// the problem JSON, which is the same in every language.
function errorSpec(r, name) {
    var spec = CONFIG.special[name];
    if (!spec || !spec.languages) { return spec; }
    var lang = chosenLanguage(r, queryArgs(r));
    return spec.languages[(lang[1] ? 'lang' : 'accept') + '-' + lang[0]];
}

// The app's 404: "nothing is published as <IRI>" (the exported page, with this request's IRI),
// or Werkzeug's plain 404 when `iri` is null.
function notFound(r, iri) {
    var html = wantsHtml(r), name = (iri === null ? 'not_found' : 'not_found_iri') + (html ? '.html' : '.json');
    var spec = errorSpec(r, name), body = fs.readFileSync(r.variables.document_root + spec.file, 'utf8');
    if (iri !== null) {
        var escaped = html ? htmlEscape(iri) : JSON.stringify(iri).slice(1, -1);
        body = body.split(CONFIG.special.missing_iri).join(escaped);
    }
    setHeaders(r, spec.headers);
    r.return(404, body);
}

// Python's repr() of a str, as the app writes the name of a missing dump or context version.
function pyRepr(s) {
    var q = (s.indexOf("'") >= 0 && s.indexOf('"') < 0) ? '"' : "'";
    var out = s.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r');
    out = out.replace(/[\x00-\x1f\x7f]/g, function (c) { return '\\x' + ('0' + c.charCodeAt(0).toString(16)).slice(-2); });
    if (q === "'") { out = out.replace(/'/g, "\\'"); }
    return q + out + q;
}

// The 404 of a route that names what was asked for (a dump, a context version, a format …).
function notFoundInFamily(r, path) {
    var families = CONFIG.special.not_found_families, marker = CONFIG.special.missing_slug;
    for (var i = 0; i < families.length; i++) {
        var m = new RegExp(families[i].pattern).exec(path);
        if (!m) { continue; }
        var html = wantsHtml(r), spec = errorSpec(r, 'not_found_' + families[i].name + (html ? '.html' : '.json'));
        var value = families[i].repr ? pyRepr(m[1]) : m[1], asked = families[i].repr ? pyRepr(marker) : marker;
        var body = fs.readFileSync(r.variables.document_root + spec.file, 'utf8');
        body = body.split(html ? htmlEscape(asked) : JSON.stringify(asked).slice(1, -1))
            .join(html ? htmlEscape(value) : JSON.stringify(value).slice(1, -1));
        setHeaders(r, spec.headers);
        r.return(404, body);
        return true;
    }
    return false;
}

function notAcceptable(r, resource, linkKey) {
    var spec = errorSpec(r, 'not_acceptable_' + resource + (wantsHtml(r) ? '.html' : '.json')) ||
        errorSpec(r, 'not_acceptable_' + resource + '.json');
    setHeaders(r, spec.headers, ['Link']);
    if (linkKey) {
        r.variables.lodpub_key = '/_lodpub/' + linkKey;
        var link = r.variables.lodpub_link;
        if (link) { r.headersOut.Link = link; }
    }
    r.return(406, fs.readFileSync(r.variables.document_root + spec.file, 'utf8'));
}

// A redirect as the app sends it: its headers, an empty body (not nginx's little page).
function redirect(r, spec, location) {
    setHeaders(r, spec.headers, ['Location']);
    r.status = spec.status;
    r.headersOut.Location = location;
    r.headersOut['Content-Length'] = 0;
    r.sendHeader();
    r.finish();
}

function seeOther(r, location, spec) {
    var query = r.variables.args;
    redirect(r, spec, location + (query ? '?' + query : ''));
}

function preflight(r) {
    setHeaders(r, CONFIG.special.preflight.headers, ['Content-Type']);
    r.return(CONFIG.special.preflight.status);
}

// A document: /doc/…, /ontology, /shapes, by negotiation or by its fixed-format URL.
function document(r, name, fixed, args) {
    var fmt;
    if (fixed) {
        fmt = CONFIG.formats.filter(function (f) { return f.name === fixed; })[0];
    } else {
        fmt = chooseFormat(mimeAccept(r));
        if (!fmt) { return notAcceptable(r, 'document', 'f' + name + '.ttl'); }
    }
    var mode = fixed ? 'f' : 'n', file;
    if (fmt.name === 'html') {
        var lang = chosenLanguage(r, args);
        file = name + '.' + (lang[1] ? 'lang' : 'accept') + '-' + lang[0] + '.html';
    } else if (fmt.name === 'jsonld') {
        var profile = jsonldProfile(fixed ? [] : mimeAccept(r), args.profile);
        file = profile === CONFIG.profiles['default'] ? name + '.jsonld' : name + '.' + profile + '.jsonld';
    } else {
        file = name + '.' + fmt.name;
    }
    serve(r, mode + file);
}

function linkedData(r, path, args) {
    var base = CONFIG.base, m, rest;
    if (r.method === 'OPTIONS') { return preflight(r); }
    if (path.indexOf('/id/') === 0 || path.indexOf('/graph/') === 0) {
        var graph = path.indexOf('/graph/') === 0;
        rest = path.slice(graph ? 7 : 4);
        if (!rest) { return notFound(r, null); }
        var doc = '/doc/' + (graph ? 'graph/' : '') + rest;
        if ((graph ? GRAPH.test('graph/' + rest) : THING.test(rest)) && exists(r, doc + '.ttl')) {
            return seeOther(r, doc, CONFIG.special.see_other);
        }
        return notFound(r, base + (graph ? 'graph/' : 'id/') + rest);
    }
    if (path.indexOf('/doc/') === 0) {
        rest = path.slice(5);
        if (!rest) { return notFound(r, null); }
        m = EXTENSION.exec(rest);
        var name = m ? m[1] : rest, fixed = m ? m[2] : null, iri;
        if (GRAPH.test(name)) { iri = base + name; }
        else if (THING.test(name)) { iri = base + 'id/' + name; }
        else { return notFound(r, base + 'doc/' + rest); }
        if (!exists(r, '/doc/' + name + '.ttl')) { return notFound(r, iri); }
        return document(r, '/doc/' + name, fixed, args);
    }
    m = /^\/(ontology|shapes)(?:\.(.*))?$/.exec(path);
    if (m) {
        var known = m[2] === undefined || CONFIG.formats.some(function (f) { return f.name === m[2]; });
        if (!known) { return notFound(r, base + m[1] + '.' + m[2]); }
        return document(r, '/' + m[1], m[2] === undefined ? null : m[2], args);
    }
    return null;
}

// The catalogue: /, /dataset, /dataset.html, /dataset/quality, /openapi.json
function catalog(r, path, args) {
    var lang, accept = mimeAccept(r);
    if (path === '/' || path === '/dataset.html') {
        lang = chosenLanguage(r, args);
        return serve(r, 'f' + (path === '/' ? '/index' : path) + '.' + (lang[1] ? 'lang' : 'accept') + '-' +
                     lang[0] + '.html');
    }
    if (path === '/dataset') {
        var offers = CONFIG.offers.dataset, fmt = negotiate(accept, offers);
        if (fmt === null) { return notAcceptable(r, 'dataset'); }
        if (fmt === 'html') {
            lang = chosenLanguage(r, args);
            return serve(r, 'n/dataset.' + (lang[1] ? 'lang' : 'accept') + '-' + lang[0] + '.html');
        }
        return serve(r, 'n/dataset.' + fmt);
    }
    if (path === '/dataset/quality') {
        var report = negotiate(accept, CONFIG.offers.quality);
        return report === null ? notAcceptable(r, 'quality') : serve(r, 'n/dataset/quality.' + report);
    }
    if (path === '/openapi.json') {
        var media = accept.length ? bestOffer(accept, CONFIG.offers.openapi) : CONFIG.offers.openapi[0];
        return media === null ? notAcceptable(r, 'openapi') :
            serve(r, 'n/openapi.' + CONFIG.offers.openapi.indexOf(media) + '.json');
    }
    return null;
}

function negotiate(accept, offers) {
    if (!accept.length) { return offers[0][1]; }
    var best = bestOffer(accept, offers.map(function (o) { return o[0]; }));
    return best === null ? null : offers.filter(function (o) { return o[0] === best; })[0][1];
}

// Only reads: anything else gets the app's 405 (with its Allow header).
function methodNotAllowed(r) {
    var spec = errorSpec(r, 'method_not_allowed' + (wantsHtml(r) ? '.html' : '.json'));
    setHeaders(r, spec.headers);
    r.return(405, fs.readFileSync(r.variables.document_root + spec.file, 'utf8'));
}

function route(r) {
    var path = r.uri, args = queryArgs(r);
    if (['GET', 'HEAD', 'OPTIONS'].indexOf(r.method) < 0) { return methodNotAllowed(r); }
    if (linkedData(r, path, args) !== null) { return; }
    if (CONFIG.exact[path]) {
        if (r.method === 'OPTIONS' && /^\/context[./]/.test(path)) { return preflight(r); }
        return serve(r, CONFIG.exact[path]);
    }
    if (CONFIG.redirects[path]) {
        return redirect(r, CONFIG.redirects[path], CONFIG.redirects[path].headers.Location);
    }
    if (catalog(r, path, args) !== null) { return; }
    if (!notFoundInFamily(r, path)) { notFound(r, null); }
}

function fallback(r) { notFound(r, null); }

export default {route: route, fallback: fallback};
