/*
 * s3xml: a strict reader for S3's XML answers (see s3xml.h).
 *
 * One pass over the input with an explicit stack of open elements. The
 * decoded texts go into one buffer sized from the input before parsing
 * (a text never decodes longer than its source, and every element adds
 * at most one NUL), so nothing grows while reading.
 */
#include "s3xml.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

typedef struct parser {
    const char *in;
    size_t len, pos;
    s3xml *doc;
    size_t cap; /* nodes allocated */
    size_t out; /* bytes used in doc->buf */
    int stack[S3XML_MAX_DEPTH];
    int depth;
    int has_child[S3XML_MAX_DEPTH];
    int last_child[S3XML_MAX_DEPTH]; /* of each open element, -1 when none yet */
    char *err;
    size_t errlen;
} parser;

__attribute__((format(printf, 2, 3))) static int fail(parser *p, const char *fmt, ...)
{
    va_list ap;
    if (p->errlen == 0)
        return -1;
    int n = snprintf(p->err, p->errlen, "XML at byte %zu: ", p->pos);
    if (n < 0 || (size_t)n >= p->errlen)
        return -1;
    va_start(ap, fmt);
    vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int is_name_start(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == ':' || c >= 0x80;
}

static int is_name_char(unsigned char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

static int starts(const parser *p, const char *s)
{
    size_t n = strlen(s);
    return p->len - p->pos >= n && !memcmp(p->in + p->pos, s, n);
}

static void skip_space(parser *p)
{
    while (p->pos < p->len && is_space(p->in[p->pos]))
        p->pos++;
}

/* Skips to just past the terminator; -1 when the input ends first. */
static int skip_past(parser *p, const char *term, const char *what)
{
    size_t n = strlen(term);
    while (p->len - p->pos >= n) {
        if (!memcmp(p->in + p->pos, term, n)) {
            p->pos += n;
            return 0;
        }
        p->pos++;
    }
    return fail(p, "unterminated %s", what);
}

/* Reads a name; returns its length (0 when none starts here). */
static size_t read_name(parser *p)
{
    size_t start = p->pos;
    if (p->pos >= p->len || !is_name_start((unsigned char)p->in[p->pos]))
        return 0;
    while (p->pos < p->len && is_name_char((unsigned char)p->in[p->pos]))
        p->pos++;
    return p->pos - start;
}

static void put_utf8(parser *p, uint32_t cp)
{
    char *o = p->doc->buf + p->out;
    if (cp < 0x80) {
        o[0] = (char)cp;
        p->out += 1;
    } else if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        p->out += 2;
    } else if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        p->out += 3;
    } else {
        o[0] = (char)(0xF0 | (cp >> 18));
        o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[3] = (char)(0x80 | (cp & 0x3F));
        p->out += 4;
    }
}

/* Decodes the reference at p->pos ('&'); the output is never longer than
 * the reference ("&#1;" is 4 bytes, a code point at most 4 in UTF-8 and
 * needs "&#x10000;" or longer past 3). */
static int read_reference(parser *p)
{
    static const struct {
        const char *name;
        char c;
    } named[] = {{"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'}, {"&apos;", '\''}};
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        if (starts(p, named[i].name)) {
            p->doc->buf[p->out++] = named[i].c;
            p->pos += strlen(named[i].name);
            return 0;
        }
    }
    if (!starts(p, "&#"))
        return fail(p, "unknown entity");
    size_t i = p->pos + 2;
    int hex = 0;
    if (i < p->len && p->in[i] == 'x') {
        hex = 1;
        i++;
    }
    uint32_t cp = 0;
    size_t digits = 0;
    for (; i < p->len && p->in[i] != ';'; i++, digits++) {
        char c = p->in[i];
        unsigned v;
        if (c >= '0' && c <= '9')
            v = (unsigned)(c - '0');
        else if (hex && c >= 'a' && c <= 'f')
            v = (unsigned)(c - 'a' + 10);
        else if (hex && c >= 'A' && c <= 'F')
            v = (unsigned)(c - 'A' + 10);
        else
            return fail(p, "bad character reference");
        if (digits >= 8)
            return fail(p, "character reference too long");
        cp = cp * (hex ? 16 : 10) + v;
    }
    if (i >= p->len || digits == 0)
        return fail(p, "bad character reference");
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return fail(p, "character reference to an invalid code point");
    p->pos = i + 1;
    put_utf8(p, cp);
    return 0;
}

static int new_node(parser *p, const char *name, size_t name_len)
{
    s3xml *d = p->doc;
    if (d->n >= S3XML_MAX_NODES)
        return fail(p, "more than %d elements", S3XML_MAX_NODES);
    if (d->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 16;
        d->nodes = xrealloc(d->nodes, p->cap * sizeof *d->nodes);
    }
    int id = (int)d->n++;
    s3xml_node *nd = &d->nodes[id];
    nd->name = name;
    nd->name_len = name_len;
    nd->parent = p->depth ? p->stack[p->depth - 1] : -1;
    nd->first_child = -1;
    nd->next_sibling = -1;
    nd->text = d->buf + p->out;
    nd->text_len = 0;
    if (nd->parent >= 0) {
        int last = p->last_child[p->depth - 1];
        if (last < 0)
            d->nodes[nd->parent].first_child = id;
        else
            d->nodes[last].next_sibling = id;
        p->last_child[p->depth - 1] = id;
        p->has_child[p->depth - 1] = 1;
    }
    return id;
}

/* Reads attributes up to '>' or '/>'; returns 1 for an empty element. */
static int read_attributes(parser *p)
{
    for (;;) {
        size_t before = p->pos;
        skip_space(p);
        if (p->pos >= p->len)
            return fail(p, "unterminated start tag");
        if (p->in[p->pos] == '>') {
            p->pos++;
            return 0;
        }
        if (starts(p, "/>")) {
            p->pos += 2;
            return 1;
        }
        if (p->pos == before)
            return fail(p, "expected a space before an attribute");
        if (!read_name(p))
            return fail(p, "bad attribute name");
        skip_space(p);
        if (p->pos >= p->len || p->in[p->pos] != '=')
            return fail(p, "expected '=' after an attribute name");
        p->pos++;
        skip_space(p);
        if (p->pos >= p->len || (p->in[p->pos] != '"' && p->in[p->pos] != '\''))
            return fail(p, "expected a quoted attribute value");
        char q = p->in[p->pos++];
        const char *end = memchr(p->in + p->pos, q, p->len - p->pos);
        if (!end)
            return fail(p, "unterminated attribute value");
        if (memchr(p->in + p->pos, '<', (size_t)(end - (p->in + p->pos))))
            return fail(p, "'<' in an attribute value");
        p->pos = (size_t)(end - p->in) + 1;
    }
}

/* Ends the element on top of the stack: NUL-terminates its text, or
 * empties it when it has child elements. */
static void close_top(parser *p)
{
    s3xml *d = p->doc;
    int id = p->stack[p->depth - 1];
    s3xml_node *nd = &d->nodes[id];
    if (p->has_child[p->depth - 1]) {
        nd->text = "";
        nd->text_len = 0;
    } else {
        nd->text_len = (size_t)(d->buf + p->out - nd->text);
        d->buf[p->out++] = '\0';
    }
    p->depth--;
}

static int read_element_start(parser *p)
{
    p->pos++; /* '<' */
    size_t name_at = p->pos;
    size_t nlen = read_name(p);
    if (!nlen)
        return fail(p, "bad element name");
    if (p->depth == 0 && p->doc->n > 0)
        return fail(p, "a second root element");
    if (p->depth >= S3XML_MAX_DEPTH)
        return fail(p, "nested deeper than %d", S3XML_MAX_DEPTH);
    int id = new_node(p, p->in + name_at, nlen);
    if (id < 0)
        return -1;
    int empty = read_attributes(p);
    if (empty < 0)
        return -1;
    p->stack[p->depth] = id;
    p->has_child[p->depth] = 0;
    p->last_child[p->depth] = -1;
    p->depth++;
    /* the text of this element starts here, after any text of its parent */
    p->doc->nodes[id].text = p->doc->buf + p->out;
    if (empty)
        close_top(p);
    return 0;
}

static int read_element_end(parser *p)
{
    p->pos += 2; /* "</" */
    size_t name_at = p->pos;
    size_t nlen = read_name(p);
    if (!nlen)
        return fail(p, "bad end tag");
    if (p->depth == 0)
        return fail(p, "end tag without a start tag");
    const s3xml_node *top = &p->doc->nodes[p->stack[p->depth - 1]];
    if (top->name_len != nlen || memcmp(top->name, p->in + name_at, nlen) != 0)
        return fail(p, "end tag </%.*s> does not match <%.*s>", (int)(nlen > 64 ? 64 : nlen),
                    p->in + name_at, (int)(top->name_len > 64 ? 64 : top->name_len), top->name);
    skip_space(p);
    if (p->pos >= p->len || p->in[p->pos] != '>')
        return fail(p, "unterminated end tag");
    p->pos++;
    close_top(p);
    return 0;
}

static int parse(parser *p)
{
    if (starts(p, "\xEF\xBB\xBF"))
        p->pos += 3;
    while (p->pos < p->len) {
        char c = p->in[p->pos];
        if (c != '<') {
            if (p->depth == 0) {
                if (!is_space(c))
                    return fail(p, "text outside the root element");
                p->pos++;
            } else if (c == '&') {
                if (read_reference(p) < 0)
                    return -1;
            } else {
                p->doc->buf[p->out++] = c;
                p->pos++;
            }
            continue;
        }
        if (starts(p, "<?")) {
            if (skip_past(p, "?>", "processing instruction") < 0)
                return -1;
        } else if (starts(p, "<!--")) {
            if (skip_past(p, "-->", "comment") < 0)
                return -1;
        } else if (starts(p, "<![CDATA[")) {
            if (p->depth == 0)
                return fail(p, "CDATA outside the root element");
            p->pos += 9;
            size_t start = p->pos;
            if (skip_past(p, "]]>", "CDATA section") < 0)
                return -1;
            size_t n = p->pos - 3 - start;
            memcpy(p->doc->buf + p->out, p->in + start, n);
            p->out += n;
        } else if (starts(p, "<!")) {
            return fail(p, "DOCTYPE and declarations are not accepted");
        } else if (starts(p, "</")) {
            if (read_element_end(p) < 0)
                return -1;
        } else if (read_element_start(p) < 0) {
            return -1;
        }
    }
    if (p->depth > 0)
        return fail(p, "unclosed element");
    if (p->doc->n == 0)
        return fail(p, "no root element");
    return 0;
}

int s3xml_parse(s3xml *doc, const char *in, size_t len, char *err, size_t errlen)
{
    memset(doc, 0, sizeof *doc);
    if (errlen)
        err[0] = '\0';
    parser p = {.in = in, .len = len, .doc = doc, .err = err, .errlen = errlen};
    /* texts never outgrow their source; each element adds at most one NUL,
     * and every element takes at least 4 bytes ("<a/>") */
    doc->buf = xmalloc(len + len / 4 + 8);
    if (parse(&p) < 0) {
        s3xml_dispose(doc);
        return -1;
    }
    return 0;
}

void s3xml_dispose(s3xml *doc)
{
    free(doc->nodes);
    free(doc->buf);
    memset(doc, 0, sizeof *doc);
}

int s3xml_is(const s3xml *doc, int node, const char *name)
{
    if (node < 0 || (size_t)node >= doc->n)
        return 0;
    const s3xml_node *nd = &doc->nodes[node];
    const char *local = memchr(nd->name, ':', nd->name_len);
    const char *s = local ? local + 1 : nd->name;
    size_t n = nd->name_len - (size_t)(s - nd->name);
    return strlen(name) == n && !memcmp(s, name, n);
}

int s3xml_next(const s3xml *doc, int node, const char *name)
{
    if (node < 0 || (size_t)node >= doc->n)
        return -1;
    for (int s = doc->nodes[node].next_sibling; s >= 0; s = doc->nodes[s].next_sibling)
        if (s3xml_is(doc, s, name))
            return s;
    return -1;
}

int s3xml_child(const s3xml *doc, int parent, const char *name)
{
    if (parent < 0 || (size_t)parent >= doc->n)
        return -1;
    int c = doc->nodes[parent].first_child;
    if (c < 0 || s3xml_is(doc, c, name))
        return c;
    return s3xml_next(doc, c, name);
}

const char *s3xml_child_text(const s3xml *doc, int parent, const char *name)
{
    int c = s3xml_child(doc, parent, name);
    return c < 0 ? NULL : doc->nodes[c].text;
}
