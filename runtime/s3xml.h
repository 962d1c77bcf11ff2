/*
 * s3xml: a small, strict XML reader for the documents S3 answers with
 * (errors, listings, multipart results), so the client needs no XML
 * library.
 *
 * It reads a whole document into a flat tree of elements. Supported:
 * an optional UTF-8 BOM, the XML declaration and processing instructions
 * (skipped), comments (skipped), elements with attributes (checked for
 * shape, then ignored), character data with the five predefined entities
 * and numeric character references, and CDATA sections. Refused: a DOCTYPE
 * (so no entity can expand), unknown entities, mismatched or unclosed
 * tags, text outside the root, nesting deeper than S3XML_MAX_DEPTH, more
 * than S3XML_MAX_NODES elements. Names are matched by local name (a
 * namespace prefix is ignored). Only an element without child elements
 * keeps its text, which is what S3's documents need.
 */
#ifndef GLASGOW_S3XML_H
#define GLASGOW_S3XML_H

#include <stddef.h>

enum {
    S3XML_MAX_DEPTH = 32,
    S3XML_MAX_NODES = 200000,
};

typedef struct s3xml_node {
    const char *name; /* points into the input; name_len bytes, prefix included */
    size_t name_len;
    const char *text; /* decoded, NUL-terminated; "" for an element with children */
    size_t text_len;
    int parent; /* -1 for the root (node 0) */
    int first_child;
    int next_sibling; /* -1 when none */
} s3xml_node;

typedef struct s3xml {
    s3xml_node *nodes;
    size_t n;
    char *buf; /* the decoded texts */
} s3xml;

/*
 * Parses in[0..len). Returns 0 with doc filled (node 0 is the root), or -1
 * with a one-line message in err and doc empty. The input must outlive
 * doc (names point into it). Allocation failure aborts.
 */
int s3xml_parse(s3xml *doc, const char *in, size_t len, char *err, size_t errlen);

/* Frees doc; safe on an empty or disposed doc. */
void s3xml_dispose(s3xml *doc);

/* Non-zero when node's local name (after any "prefix:") is name. */
int s3xml_is(const s3xml *doc, int node, const char *name);

/* The first child of parent named name, or -1. */
int s3xml_child(const s3xml *doc, int parent, const char *name);

/* The next sibling of node named name, or -1. */
int s3xml_next(const s3xml *doc, int node, const char *name);

/* The text of parent's first child named name, or NULL when absent. */
const char *s3xml_child_text(const s3xml *doc, int parent, const char *name);

#endif
