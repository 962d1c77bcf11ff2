/*
 * Fuzz target: s3xml, the XML reader of the store's answers, and
 * s3_parse_error on top of it.
 *
 * Any input either fails with a one-line message and an empty document,
 * or gives a tree whose links are consistent (parents before children,
 * siblings in order, texts inside the decoded buffer and NUL-terminated,
 * names made of name bytes). Writing that tree back as XML (texts
 * escaped) and reading it again gives the same tree. s3_parse_error fills
 * a NUL-terminated, control-free Code exactly when the root is an Error
 * with a non-empty Code.
 */
#include "fuzz.h"
#include "s3.h"
#include "s3xml.h"
#include "util.h"

#include <string.h>

static void check_tree(const s3xml *d, const char *in, size_t len)
{
    fuzz_check(d->n > 0, "a parsed document has a root");
    fuzz_check(d->nodes[0].parent == -1 && d->nodes[0].next_sibling == -1, "root links");
    for (size_t i = 0; i < d->n; i++) {
        const s3xml_node *nd = &d->nodes[i];
        fuzz_check(nd->name >= in && nd->name + nd->name_len <= in + len && nd->name_len > 0,
                   "node %zu: name outside the input", i);
        fuzz_check(i == 0 || (nd->parent >= 0 && (size_t)nd->parent < i),
                   "node %zu: parent %d not before it", i, nd->parent);
        fuzz_check(nd->first_child < 0 ||
                       ((size_t)nd->first_child > i && d->nodes[nd->first_child].parent == (int)i),
                   "node %zu: first child link", i);
        fuzz_check(nd->next_sibling < 0 || ((size_t)nd->next_sibling > i &&
                                            d->nodes[nd->next_sibling].parent == nd->parent),
                   "node %zu: sibling link", i);
        fuzz_check(nd->text[nd->text_len] == '\0', "node %zu: text not NUL-terminated", i);
        fuzz_check(nd->first_child < 0 || nd->text_len == 0, "node %zu: text with children", i);
        for (size_t k = 0; k < nd->name_len; k++)
            fuzz_check(strchr("<>&\"' \t\r\n/=", nd->name[k]) == NULL, "node %zu: bad name", i);
    }
}

static void write_node(strbuf *sb, const s3xml *d, int i)
{
    const s3xml_node *nd = &d->nodes[i];
    strbuf_adds(sb, "<");
    strbuf_add(sb, nd->name, nd->name_len);
    strbuf_adds(sb, ">");
    if (nd->first_child < 0) {
        for (size_t k = 0; k < nd->text_len; k++) {
            char c = nd->text[k];
            if (c == '<')
                strbuf_adds(sb, "&lt;");
            else if (c == '&')
                strbuf_adds(sb, "&amp;");
            else if (c == '>')
                strbuf_adds(sb, "&gt;");
            else
                strbuf_add(sb, &c, 1);
        }
    }
    for (int c = nd->first_child; c >= 0; c = d->nodes[c].next_sibling)
        write_node(sb, d, c);
    strbuf_adds(sb, "</");
    strbuf_add(sb, nd->name, nd->name_len);
    strbuf_adds(sb, ">");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    s3xml d;
    char err[160];
    if (s3xml_parse(&d, in, size, err, sizeof err) < 0) {
        fuzz_check(d.n == 0 && d.nodes == NULL && d.buf == NULL, "a failure leaves doc empty");
        fuzz_check(err[0] != '\0' && strlen(err) < sizeof err && !strchr(err, '\n'),
                   "a failure has a one-line message");
    } else {
        check_tree(&d, in, size);
        strbuf sb;
        strbuf_init(&sb);
        write_node(&sb, &d, 0);
        s3xml d2;
        fuzz_check(s3xml_parse(&d2, sb.buf, sb.len, err, sizeof err) == 0,
                   "the written tree does not parse: %s", err);
        fuzz_check(d2.n == d.n, "written tree: %zu nodes, not %zu", d2.n, d.n);
        for (size_t i = 0; i < d.n; i++) {
            const s3xml_node *a = &d.nodes[i], *b = &d2.nodes[i];
            fuzz_check(a->name_len == b->name_len && !memcmp(a->name, b->name, a->name_len) &&
                           a->parent == b->parent && a->text_len == b->text_len &&
                           !memcmp(a->text, b->text, a->text_len),
                       "written tree differs at node %zu", i);
        }
        s3xml_dispose(&d2);
        strbuf_dispose(&sb);
    }

    s3_error e;
    memset(&e, 0, sizeof e);
    int is_err = s3_parse_error(in, size, &e);
    int want = size > 0 && size <= S3_MAX_ERROR_BODY && d.n > 0 && s3xml_is(&d, 0, "Error") &&
               s3xml_child_text(&d, 0, "Code") && s3xml_child_text(&d, 0, "Code")[0];
    fuzz_check(is_err == want, "s3_parse_error says %d, the tree says %d", is_err, want);
    if (is_err) {
        fuzz_check(e.code[0] && strlen(e.code) < sizeof e.code, "a Code is set");
        for (const char *p = e.code; *p; p++)
            fuzz_check((unsigned char)*p >= 0x20 && *p != 0x7f, "control byte in the Code");
        fuzz_check(strlen(e.message) < sizeof e.message, "the message fits");
    } else {
        fuzz_check(e.code[0] == '\0' && e.message[0] == '\0', "no error: record untouched");
    }
    s3xml_dispose(&d);
    return 0;
}
