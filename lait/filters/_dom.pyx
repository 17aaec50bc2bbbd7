# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The DOM walks of :mod:`lait.filters.page` and :mod:`lait.filters.image_context` compiled: over
libxml2's nodes in C, instead of one lxml proxy object per element and event.

- :func:`scan`: :func:`lait.filters.page.walk_body`, the visible text and where images sit in it.
- :func:`index`: :func:`lait.filters.page.index_elements`, the elements looked up by tag or by
  `itemprop=image` wherever they are.
- :func:`caption_lines`, :func:`leading_text_after`, :func:`preceding_heading`: the walks of
  :func:`lait.filters.image_context.image_texts`, an image's caption, next sentence and headline.

Each must give exactly what its Python definition gives (tests/test_page.py and
tests/test_image_context.py compare them on every shared page); the Python stays the
definition, and runs wherever this module was not built. Tags are classified by the sets the
Python modules pass in (:func:`set_tag_kinds`, :func:`set_context_kinds`), so they are written once.
"""

from cpython.pyport cimport PY_SSIZE_T_MAX
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.unicode cimport Py_UNICODE_ISSPACE, PyUnicode_DecodeUTF8
from libc.string cimport memcpy, strcmp, strlen

cimport lxml.includes.etreepublic as cetree
from lxml.includes cimport tree

cetree.import_lxml__etree()

cdef enum:
    INVISIBLE = 1
    INLINE = 2
    IMAGE = 4
    BLOCK_TEXT = 8
    NOSCRIPT = 16
    H1 = 32
    INDEXED = 64
    KNOWN = 128  # a table slot in use
    # image_context's kinds (set_context_kinds)
    CONTEXT_IMAGE = 256  # image_context._IMAGES: an image, or a frame that shows one
    HOLDS_IMAGE = 512  # what _holds_image looks for below an element
    HEADING = 1024  # h1-h6
    HEADLINE = 2048  # h1-h3
    CHROME = 4096  # image_context._CHROME_TAGS
    BREAK = 8192  # br
    PICTURE = 16384
    PAGE = 32768  # body, html: the chrome test stops below them
    ARTICLE = 65536  # body, article, main: a block after an image is not looked for above them
    ELEMENT = 1 << 20  # not in the table: any element (a tag that is a string), see _node_kind

# Tag kinds by name, in an open-addressing table: names are hashed by content, never by the
# pointer libxml2 interns them at, so a table outlives any parser's dictionary.
cdef enum:
    SLOTS = 256
    NAME_BYTES = 16

cdef struct Slot:
    char name[NAME_BYTES]
    int kind

cdef Slot _slots[SLOTS]
cdef bint _configured = False
cdef tuple _indexed_tags = ()
cdef bint _context_configured = False  # set_context_kinds
cdef object _chrome_name = None


cdef inline unsigned int _hash(const char* name) noexcept nogil:
    cdef unsigned int h = 2166136261u
    while name[0]:
        h = (h ^ <unsigned char>name[0]) * 16777619u
        name += 1
    return h


def set_tag_kinds(invisible, inline, image, block_text, indexed) -> None:
    """Classify tags as page.py's sets do; every other tag is a plain block element.
    `indexed` are the tags :func:`index` collects."""
    global _configured, _indexed_tags, _context_configured
    cdef int i
    for i in range(SLOTS):
        _slots[i].kind = 0
    for names, kind in ((invisible, INVISIBLE), (inline, INLINE), (image, IMAGE), (block_text, BLOCK_TEXT),
                        (indexed, INDEXED), (("noscript",), NOSCRIPT), (("h1",), H1)):
        _add_kind(names, kind)
    _indexed_tags = tuple(indexed)
    _configured = True
    _context_configured = False  # the table was cleared: set_context_kinds must run again


cdef _add_kind(names, int kind):
    """Give each tag of `names` the `kind` bits too (a slot for each tag not yet in the table)."""
    cdef bytes raw
    cdef unsigned int slot
    for name in names:
        raw = name.encode("ascii")
        if len(raw) >= NAME_BYTES:
            raise ValueError(f"tag name too long for the table: {name}")
        slot = _hash(raw) % SLOTS
        while _slots[slot].kind and strcmp(_slots[slot].name, raw) != 0:
            slot = (slot + 1) % SLOTS
        memcpy(_slots[slot].name, <const char*>raw, len(raw) + 1)
        _slots[slot].kind |= kind | KNOWN


cdef inline int _kind(const char* name) noexcept nogil:
    cdef unsigned int slot = _hash(name) % SLOTS
    while _slots[slot].kind:
        if strcmp(_slots[slot].name, name) == 0:
            return _slots[slot].kind
        slot = (slot + 1) % SLOTS
    return 0


cdef inline bint _is_text(tree.xmlNode* node) noexcept nogil:
    return node.type == tree.XML_TEXT_NODE or node.type == tree.XML_CDATA_SECTION_NODE


cdef inline bint _is_element_like(tree.xmlNode* node) noexcept nogil:
    # What lxml's iterwalk visits: elements, and comments, PIs and entity references (tails only).
    return (node.type == tree.XML_ELEMENT_NODE or node.type == tree.XML_COMMENT_NODE
            or node.type == tree.XML_PI_NODE or node.type == tree.XML_ENTITY_REF_NODE)


cdef struct Text:
    char* data
    Py_ssize_t length  # bytes
    Py_ssize_t capacity
    Py_ssize_t chars  # code points: what len() of the Python string counts


cdef int _grow(Text* text, Py_ssize_t extra) except -1:
    cdef Py_ssize_t capacity = text.capacity
    cdef char* data
    if text.length + extra <= capacity:
        return 0
    while capacity < text.length + extra:
        capacity = capacity * 2 + 4096
    data = <char*>PyMem_Realloc(text.data, capacity)
    if data == NULL:
        raise MemoryError()
    text.data, text.capacity = data, capacity
    return 0


cdef inline int _space(Text* text) except -1:
    _grow(text, 1)
    text.data[text.length] = 32
    text.length += 1
    text.chars += 1
    return 0


cdef int _append_run(Text* text, tree.xmlNode* node) except -1:
    """Append the run of text nodes starting at `node` (an element's .text or .tail)."""
    cdef const unsigned char* content
    cdef Py_ssize_t n, i
    while node != NULL and _is_text(node):
        if node.content != NULL:
            content = <const unsigned char*>node.content
            n = strlen(<const char*>content)
            _grow(text, n)
            memcpy(text.data + text.length, content, n)
            text.length += n
            for i in range(n):
                if (content[i] & 0xC0) != 0x80:
                    text.chars += 1
        node = node.next
    return 0


cdef tree.xmlNode* _skip_run(tree.xmlNode* node) noexcept nogil:
    while node != NULL and _is_text(node):
        node = node.next
    return node


cdef tree.xmlNode* _next_element(Text* text, tree.xmlNode* node, Py_ssize_t max_chars) except? NULL:
    """The first element at or after `node` among its siblings; the tails of comments and PIs
    passed on the way are appended, as iterwalk's "comment" and "pi" events take them."""
    while node != NULL:
        if node.type == tree.XML_ELEMENT_NODE:
            return node
        if _is_element_like(node):
            if text.chars < max_chars:
                _append_run(text, node.next)
            node = _skip_run(node.next)
        else:
            node = node.next
    return NULL


cdef inline tree.xmlNode* _next_below(tree.xmlNode* node, tree.xmlNode* top) noexcept nogil:
    """The node after `node` in document order, staying below `top` (NULL past its last): the
    first child of an element, else the next sibling of it or of its nearest ancestor below `top`."""
    if node.type == tree.XML_ELEMENT_NODE and node.children != NULL:
        return node.children
    while node.next == NULL:
        node = node.parent
        if node == top or node == NULL:
            return NULL
    return node.next


cdef void _noscript_images(list images, cetree._Document doc, tree.xmlNode* top, Py_ssize_t offset,
                           Py_ssize_t order) except *:
    """Every <img> below `top`, in document order (`element.iter("img")`)."""
    cdef tree.xmlNode* node = top.children
    while node != NULL:
        if node.type == tree.XML_ELEMENT_NODE and node.ns == NULL and strcmp(<const char*>node.name, b"img") == 0:
            images.append((cetree.elementFactory(doc, node), offset, order, True))
        node = _next_below(node, top)


cdef cetree._Element _walked(element):
    """`element` as lxml's C type, once :func:`set_tag_kinds` has classified the tags."""
    if not _configured:
        raise RuntimeError("set_tag_kinds() was not called")
    return <cetree._Element?>element


def scan(body, Py_ssize_t max_chars, Py_ssize_t min_paragraph_chars) -> tuple:
    """`(text, images, paragraphs, paragraph_elements, h1_offset, h1, n_elements)` of `body`,
    the fields of the `BodyScan` that `walk_body` returns; raises UnicodeDecodeError where lxml would."""
    cdef cetree._Element top = _walked(body)
    cdef cetree._Document doc = top._doc
    cdef tree.xmlNode* root = top._c_node
    cdef tree.xmlNode* node = root
    cdef Text text
    cdef Py_ssize_t order = 0, depth = 0, start, h1_offset = -1, starts_capacity = 64
    cdef Py_ssize_t* starts = <Py_ssize_t*>PyMem_Malloc(starts_capacity * sizeof(Py_ssize_t))
    cdef Py_ssize_t* grown
    cdef tree.xmlNode* child
    cdef int kind
    images, paragraphs, paragraph_elements, h1 = [], [], [], None
    text.data, text.length, text.capacity, text.chars = NULL, 0, 0, 0
    if starts == NULL:
        raise MemoryError()
    try:
        while True:
            # "start" of node
            order += 1
            kind = _kind(<const char*>node.name) if node.ns == NULL else 0
            if kind & INVISIBLE:  # its subtree is skipped: its "end" follows at once
                if kind & NOSCRIPT:  # lazy-loading pages put the real <img> here
                    _noscript_images(images, doc, node, text.chars, order)
            else:
                if kind & IMAGE:
                    images.append((cetree.elementFactory(doc, node), text.chars, order, False))
                elif kind & BLOCK_TEXT:
                    starts[depth] = text.chars
                elif kind & H1 and h1_offset < 0:
                    h1_offset = text.chars
                    h1 = cetree.elementFactory(doc, node)
                if not kind & INLINE:
                    _space(&text)
                if text.chars < max_chars:
                    _append_run(&text, node.children)
                child = _next_element(&text, _skip_run(node.children), max_chars)
                if child != NULL:
                    depth += 1
                    if depth >= starts_capacity:
                        starts_capacity *= 2
                        grown = <Py_ssize_t*>PyMem_Realloc(starts, starts_capacity * sizeof(Py_ssize_t))
                        if grown == NULL:
                            raise MemoryError()
                        starts = grown
                    node = child
                    continue
            # "end" of node, then of every ancestor whose last element child it was
            while True:
                if kind & BLOCK_TEXT and not kind & INVISIBLE:
                    start = starts[depth]
                    if text.chars - start >= min_paragraph_chars:
                        paragraphs.append((start, text.chars - start))
                        if len(paragraph_elements) < 5:
                            paragraph_elements.append(cetree.elementFactory(doc, node))
                if not kind & INLINE:
                    _space(&text)
                if node == root:
                    break
                if text.chars < max_chars:
                    _append_run(&text, node.next)
                child = _next_element(&text, _skip_run(node.next), max_chars)
                if child != NULL:
                    node = child
                    break
                node = node.parent
                depth -= 1
                kind = _kind(<const char*>node.name) if node.ns == NULL else 0
            if node == root:
                break
        out = PyUnicode_DecodeUTF8(text.data, text.length, NULL) if text.length else ""
    finally:
        PyMem_Free(text.data)
        PyMem_Free(starts)
    return out, images, paragraphs, paragraph_elements, h1_offset, h1, order


cdef bint _attribute_is(tree.xmlNode* node, const char* name, const char* value) noexcept nogil:
    """Whether `node` has the attribute `name` (no namespace) with exactly the string `value`."""
    cdef tree.xmlAttr* attribute = node.properties
    cdef tree.xmlNode* text
    cdef const char* content
    cdef Py_ssize_t at, n
    while attribute != NULL:
        if attribute.ns == NULL and strcmp(<const char*>attribute.name, name) == 0:
            at, n = 0, strlen(value)
            text = attribute.children
            while text != NULL:  # the value's text nodes, concatenated, compared piece by piece
                if text.content != NULL:
                    content = <const char*>text.content
                    while content[0]:
                        if at >= n or content[0] != value[at]:
                            return False
                        at += 1
                        content += 1
                text = text.next
            return at == n
        attribute = attribute.next
    return False


def index(root, attribute: str, value: str, skip_tag: str) -> tuple:
    """`({tag: [elements]}, [elements with attribute=value])` in document order, `root` included,
    for the indexed tags of :func:`set_tag_kinds`; the second list leaves out elements named `skip_tag`."""
    cdef cetree._Element top = _walked(root)
    cdef cetree._Document doc = top._doc
    cdef tree.xmlNode* start = top._c_node
    cdef tree.xmlNode* node = start
    cdef bytes attribute_raw = attribute.encode("ascii"), value_raw = value.encode("utf-8")
    cdef bytes skip_raw = skip_tag.encode("ascii")
    found = {tag: [] for tag in _indexed_tags}
    wanted = {tag.encode("ascii"): found[tag] for tag in _indexed_tags}
    marked = []
    while node != NULL:
        if node.type == tree.XML_ELEMENT_NODE:
            if node.ns == NULL and _kind(<const char*>node.name) & INDEXED:
                wanted[<bytes>node.name].append(cetree.elementFactory(doc, node))
            if (node.properties != NULL and _attribute_is(node, attribute_raw, value_raw)
                    and not (node.ns == NULL and strcmp(<const char*>node.name, skip_raw) == 0)):
                marked.append(cetree.elementFactory(doc, node))
            if node.children != NULL:
                node = node.children
                continue
        if node == start:
            break
        while node.next == NULL:
            node = node.parent
            if node == start or node == NULL:
                return found, marked
        node = node.next
    return found, marked


# ---------------------------------------------------------------------------------------------
# Image context: the tree walks of lait.filters.image_context (image_texts). Each function below
# mirrors the Python one of the same name there; the strings they read are finished (split,
# joined, matched) by the same Python string methods, so the texts are equal character for
# character. lxml's views are mirrored too: an element's children, siblings and parent are its
# elements, comments, PIs and entity references (`_is_element_like`); the tag of the last three
# is not a string; their `.text` is their content (an entity's, `&name;`).

def set_context_kinds(images, holds_image, headings, headlines, chrome, chrome_name) -> None:
    """Classify tags as image_context's sets do (after :func:`set_tag_kinds`); `chrome_name(names)`
    answers whether a class and id string names page chrome."""
    global _context_configured, _chrome_name
    if not _configured:
        raise RuntimeError("set_tag_kinds() was not called")
    for names, kind in ((images, CONTEXT_IMAGE), (holds_image, HOLDS_IMAGE), (headings, HEADING),
                        (headlines, HEADLINE), (chrome, CHROME), (("br",), BREAK), (("picture",), PICTURE),
                        (("body", "html"), PAGE), (("body", "article", "main"), ARTICLE)):
        _add_kind(names, kind)
    _chrome_name = chrome_name
    _context_configured = True


cdef inline int _node_kind(tree.xmlNode* node) noexcept nogil:
    if node.type != tree.XML_ELEMENT_NODE:
        return 0
    return (_kind(<const char*>node.name) if node.ns == NULL else 0) | ELEMENT


cdef inline tree.xmlNode* _element_like(tree.xmlNode* node, bint forward) noexcept nogil:
    """`node` or the first element-like node after it (before it, not `forward`); NULL when none."""
    while node != NULL and not _is_element_like(node):
        node = node.next if forward else node.prev
    return node


cdef inline tree.xmlNode* _first_child(tree.xmlNode* node) noexcept nogil:
    return _element_like(node.children, True) if node.type == tree.XML_ELEMENT_NODE else NULL


cdef inline tree.xmlNode* _parent(tree.xmlNode* node) noexcept nogil:
    """lxml's getparent(): NULL above the root element."""
    node = node.parent
    return node if node != NULL and _is_element_like(node) else NULL


cdef bint _blank(const unsigned char* data, Py_ssize_t n) noexcept:
    """Whether UTF-8 `data` is all whitespace as Python's str.isspace() counts it (or empty)."""
    cdef Py_ssize_t i = 0
    cdef Py_UCS4 c
    cdef unsigned char b
    while i < n:
        b = data[i]
        if b < 0x80:
            c, i = b, i + 1
        elif b < 0xE0 and i + 1 < n:
            c, i = ((b & 0x1F) << 6) | (data[i + 1] & 0x3F), i + 2
        elif b < 0xF0 and i + 2 < n:
            c, i = ((b & 0x0F) << 12) | ((data[i + 1] & 0x3F) << 6) | (data[i + 2] & 0x3F), i + 3
        else:  # no whitespace takes four bytes (nor is a sequence cut short any)
            return False
        if not Py_UNICODE_ISSPACE(c):
            return False
    return True


cdef bint _run_has_text(tree.xmlNode* node) noexcept:
    """Whether the run of text nodes at `node` (a `.text` or `.tail`) has a character besides whitespace."""
    while node != NULL and _is_text(node):
        if node.content != NULL and not _blank(node.content, strlen(<const char*>node.content)):
            return True
        node = node.next
    return False


cdef int _append_own_text(Text* text, tree.xmlNode* node) except -1:
    """Append lxml's `.text` of an element-like node."""
    cdef bytes entity
    if node.type == tree.XML_ELEMENT_NODE:
        _append_run(text, node.children)
    elif node.type == tree.XML_ENTITY_REF_NODE:
        entity = b"&" + <bytes>node.name + b";"
        _append_bytes(text, entity, len(entity))
    elif node.content != NULL:
        _append_bytes(text, <const char*>node.content, strlen(<const char*>node.content))
    return 0


cdef int _append_bytes(Text* text, const char* data, Py_ssize_t n) except -1:
    cdef Py_ssize_t i
    _grow(text, n)
    memcpy(text.data + text.length, data, n)
    text.length += n
    for i in range(n):
        if (<unsigned char>data[i] & 0xC0) != 0x80:
            text.chars += 1
    return 0


cdef bint _own_text_has_text(tree.xmlNode* node) noexcept:
    if node.type == tree.XML_ELEMENT_NODE:
        return _run_has_text(node.children)
    if node.type == tree.XML_ENTITY_REF_NODE:
        return True
    return node.content != NULL and not _blank(node.content, strlen(<const char*>node.content))


cdef str _decoded(Text* text):
    return PyUnicode_DecodeUTF8(text.data, text.length, NULL) if text.length else ""


cdef str _run_string(tree.xmlNode* node):
    """A `.text` or `.tail` run as a string ("" for none)."""
    cdef Text text
    text.data, text.length, text.capacity, text.chars = NULL, 0, 0, 0
    try:
        _append_run(&text, node)
        return _decoded(&text)
    finally:
        PyMem_Free(text.data)


cdef bint _collect(Text* text, tree.xmlNode* node, Py_ssize_t stop) except -1:
    """Append `_chunks(node)` until `stop` characters are reached; True when stopped there."""
    cdef int kind = _node_kind(node)
    cdef bint spaced = not kind & INLINE
    cdef Py_ssize_t before
    cdef tree.xmlNode* child
    if kind & INVISIBLE:
        return False
    if spaced:
        _space(text)
        if text.chars >= stop:
            return True
    before = text.length
    _append_own_text(text, node)
    if text.length > before and text.chars >= stop:
        return True
    child = _first_child(node)
    while child != NULL:
        if _collect(text, child, stop):
            return True
        before = text.length
        _append_run(text, child.next)
        if text.length > before and text.chars >= stop:
            return True
        child = _element_like(child.next, True)
    if spaced:
        _space(text)
        if text.chars >= stop:
            return True
    return False


cdef str _raw_text(tree.xmlNode* node, Py_ssize_t stop, bint* stopped):
    cdef Text text
    text.data, text.length, text.capacity, text.chars = NULL, 0, 0, 0
    try:
        stopped[0] = _collect(&text, node, stop)
        return _decoded(&text)
    finally:
        PyMem_Free(text.data)


cdef str _text_of(tree.xmlNode* node):
    cdef bint stopped
    return " ".join(_raw_text(node, PY_SSIZE_T_MAX, &stopped).split())


cdef str _leading_text(tree.xmlNode* node, Py_ssize_t max_chars):
    cdef bint stopped
    return " ".join(_raw_text(node, max_chars, &stopped).split())


cdef bint _has_more_words(tree.xmlNode* node, Py_ssize_t limit) except -1:
    cdef bint stopped = True
    cdef Py_ssize_t stop = 2 * limit + 1
    while stopped:  # a start with more words decides; else a longer start is read
        if len(_raw_text(node, stop, &stopped).split()) > limit:
            return True
        stop *= 2
    return False


cdef bint _has_text(tree.xmlNode* node) noexcept:
    cdef tree.xmlNode* child
    if _node_kind(node) & INVISIBLE:
        return False
    if _own_text_has_text(node):
        return True
    child = _first_child(node)
    while child != NULL:
        if _has_text(child) or _run_has_text(child.next):
            return True
        child = _element_like(child.next, True)
    return False


cdef inline bint _is_block(int kind) noexcept nogil:
    return kind & ELEMENT and not kind & (INLINE | BREAK | CONTEXT_IMAGE)


cdef bint _holds_image(tree.xmlNode* top) noexcept nogil:
    """Whether `top` is an image or has one below it."""
    cdef tree.xmlNode* node
    if top.type != tree.XML_ELEMENT_NODE:
        return False
    if _node_kind(top) & CONTEXT_IMAGE:
        return True
    node = top.children
    while node != NULL:
        if _node_kind(node) & HOLDS_IMAGE:
            return True
        node = _next_below(node, top)
    return False


cdef tree.xmlNode* _last_headline(tree.xmlNode* top) noexcept nogil:
    """The last h1-h3 below `top` in document order, NULL when none."""
    cdef tree.xmlNode* node = top.children
    cdef tree.xmlNode* found = NULL
    while node != NULL:
        if _node_kind(node) & HEADLINE:
            found = node
        node = _next_below(node, top)
    return found


cdef str _attribute(tree.xmlNode* node, const char* name):
    """lxml's `get(name)` of an attribute without a namespace; None when absent."""
    cdef tree.xmlAttr* attribute = node.properties
    cdef Text text
    while attribute != NULL:
        if attribute.ns == NULL and strcmp(<const char*>attribute.name, name) == 0:
            text.data, text.length, text.capacity, text.chars = NULL, 0, 0, 0
            try:
                _append_run(&text, attribute.children)
                return _decoded(&text)
            finally:
                PyMem_Free(text.data)
        attribute = attribute.next
    return None


cdef bint _own_chrome(tree.xmlNode* node, int kind) except -1:
    if kind & CHROME:
        return True
    if not kind & ELEMENT:
        return False
    identifier = _attribute(node, b"id")
    names = _attribute(node, b"class") or identifier
    return bool(names) and bool(_chrome_name(names + " " + (identifier or "")))


cdef bint _in_chrome(tree.xmlNode* node, dict known) except -1:
    """ChromeTest's answer, `known` its answers so far by node address."""
    below = []
    answer = False
    cdef int kind
    while node != NULL:
        key = <size_t>node
        found = known.get(key)
        if found is not None:
            answer = found
            break
        kind = _node_kind(node)
        if kind & PAGE:
            break
        below.append(key)
        if _own_chrome(node, kind):
            answer = True
            break
        node = _parent(node)
    for key in below:
        known[key] = answer
    return answer


cdef tree.xmlNode* _anchor(tree.xmlNode* image) noexcept:
    cdef tree.xmlNode* anchor = image
    cdef tree.xmlNode* parent
    cdef tree.xmlNode* child
    cdef int kind
    while True:
        parent = _parent(anchor)
        if parent == NULL:
            return anchor
        kind = _node_kind(parent)
        if _is_block(kind) and not kind & PICTURE:
            return anchor
        if _own_text_has_text(parent):
            return anchor
        child = _first_child(parent)
        while child != NULL:
            if child != anchor and (_has_text(child) or _holds_image(child) or _run_has_text(child.next)):
                return anchor
            child = _element_like(child.next, True)
        anchor = parent


cdef str _line_after(tree.xmlNode* anchor):
    chunks = [_run_string(anchor.next)]
    cdef Py_ssize_t breaks = 0
    cdef tree.xmlNode* sibling = _element_like(anchor.next, True)
    cdef int kind
    while sibling != NULL:
        kind = _node_kind(sibling)
        if kind & BREAK:
            breaks += 1
            if breaks >= 2 and "".join(chunks).strip():
                break
            chunks.append(" ")
        elif _is_block(kind) or _holds_image(sibling):
            break
        else:
            breaks = 0
            chunks.append(_text_of(sibling))
        chunks.append(_run_string(sibling.next))
        sibling = _element_like(sibling.next, True)
    return " ".join("".join(chunks).split())


cdef str _line_before(tree.xmlNode* anchor):
    chunks = []
    cdef tree.xmlNode* sibling = _element_like(anchor.prev, False)
    cdef tree.xmlNode* parent
    cdef int kind
    while sibling != NULL:
        chunks.append(_run_string(sibling.next))
        kind = _node_kind(sibling)
        if kind & BREAK:
            chunks.append(" ")
        elif _is_block(kind) or _holds_image(sibling):
            break
        else:
            chunks.append(_text_of(sibling))
        sibling = _element_like(sibling.prev, False)
    else:
        parent = _parent(anchor)
        chunks.append(_run_string(parent.children) if parent != NULL else "")
    return " ".join("".join(reversed(chunks)).split())


cdef str _block_after(tree.xmlNode* anchor, Py_ssize_t max_levels, Py_ssize_t max_chars, dict known):
    """`_block_after` reading `_text_of` (`max_chars` < 0) or `_leading_text(sibling, max_chars)`."""
    cdef tree.xmlNode* node = anchor
    cdef tree.xmlNode* sibling
    cdef tree.xmlNode* parent
    cdef int kind
    for _ in range(max_levels):
        sibling = _element_like(node.next, True)
        while sibling != NULL:
            kind = _node_kind(sibling)
            if not kind & BREAK:
                if kind & HEADING or _holds_image(sibling) or _in_chrome(sibling, known):
                    return ""
                text = _text_of(sibling) if max_chars < 0 else _leading_text(sibling, max_chars)
                if text:
                    return text
            sibling = _element_like(sibling.next, True)
        parent = _parent(node)
        if parent == NULL or _has_text(parent) or _node_kind(parent) & ARTICLE:
            return ""
        node = parent
    return ""


cdef tree.xmlNode* _context_node(image) except NULL:
    if not _context_configured:
        raise RuntimeError("set_context_kinds() was not called")
    return _walked(image)._c_node


def caption_lines(image, dict known, Py_ssize_t max_levels):
    """None where the image is in page chrome, else `(after, before, block)` of its anchor: the
    `_line_after` and `_line_before` of image_context's `_caption_at`, and where both are empty
    the block after it that `_next_block` reads (`_block_after(anchor, max_levels, _text_of)`)."""
    cdef tree.xmlNode* node = _context_node(image)
    if _in_chrome(node, known):
        return None
    node = _anchor(node)
    after, before = _line_after(node), _line_before(node)
    return after, before, "" if after or before else _block_after(node, max_levels, -1, known)


def leading_text_after(image, dict known, Py_ssize_t max_levels, Py_ssize_t max_chars) -> str:
    """image_context's `_block_after(_anchor(image), max_levels, _leading_text)`, `_leading_text`
    reading `max_chars`; for an image not in page chrome."""
    return _block_after(_anchor(_context_node(image)), max_levels, max_chars, known)


def preceding_heading(image, dict known, Py_ssize_t max_levels, Py_ssize_t max_words) -> str:
    """image_context's `preceding_heading`, `_has_more_words` counting to `max_words`."""
    cdef tree.xmlNode* node = _context_node(image)
    cdef tree.xmlNode* sibling
    cdef tree.xmlNode* heading
    cdef Py_ssize_t checked
    cdef int kind
    for _ in range(max_levels):
        checked = 0
        sibling = _element_like(node.prev, False)
        while sibling != NULL:
            kind = _node_kind(sibling)
            if checked >= 4 or (kind & ELEMENT and _holds_image(sibling)):
                return ""
            heading = sibling if kind & HEADLINE else _last_headline(sibling) if kind & ELEMENT else NULL
            if heading != NULL:
                return "" if _in_chrome(heading, known) else _text_of(heading)
            if _has_more_words(sibling, max_words):
                return ""
            checked += 1
            sibling = _element_like(sibling.prev, False)
        node = _parent(node)
        if node == NULL or _node_kind(node) & PAGE:
            return ""
    return ""


# ---------------------------------------------------------------------------------------------
# Ancestors: what lait.scoring.dominant_image.features reads of an image's ancestors.

cdef Py_ssize_t _levels_below(tree.xmlNode* ancestor, tree.xmlNode* node) noexcept nogil:
    """How many levels `ancestor` is above `node` (0 for `node` itself), -1 where it is not above it."""
    cdef Py_ssize_t level = 0
    while node != NULL:
        if node == ancestor:
            return level
        node = _parent(node)
        level += 1
    return -1


cdef dict _ancestor_tags = None  # set_ancestor_tags: {name as bytes: name}


def set_ancestor_tags(tags) -> None:
    """The tags :func:`ancestors` reports."""
    global _ancestor_tags
    _ancestor_tags = {tag.encode("ascii"): tag for tag in tags}


def ancestors(element, h1, paragraphs, Py_ssize_t class_levels) -> tuple:
    """`(depth, h1_distance, paragraph_distance, container_depth, tags, class_texts, outer_href,
    itemprop_image)` of `element`'s ancestors: the definition is
    :func:`lait.scoring.dominant_image.features.walk_ancestors`, with `h1` and `paragraphs` the
    elements whose ancestors it was given, and `tags` those of :func:`set_ancestor_tags`."""
    if _ancestor_tags is None:
        raise RuntimeError("set_ancestor_tags() was not called")
    cdef tree.xmlNode* node = _walked(element)._c_node
    cdef tree.xmlNode* h1_node = (<cetree._Element?>h1)._c_node if h1 is not None else NULL
    cdef list paragraph_nodes = [<size_t>(<cetree._Element?>p)._c_node for p in paragraphs]
    cdef Py_ssize_t depth = 0, h1_distance = 0, paragraph_distance = 0, container_depth = 0, level, best
    cdef tree.xmlNode* ancestor = _parent(node)
    cdef bytes raw
    cdef bint itemprop_image = False
    wanted = _ancestor_tags
    found, class_texts, outer_href = [], [], None
    while ancestor != NULL:
        depth += 1
        if not h1_distance and h1_node != NULL:
            level = _levels_below(ancestor, h1_node)
            if level >= 0:
                h1_distance = depth + level
        if not paragraph_distance:
            best = -1
            for p in paragraph_nodes:
                level = _levels_below(ancestor, <tree.xmlNode*><size_t>p)
                if level >= 0 and (best < 0 or level < best):
                    best = level
            if best >= 0:
                paragraph_distance, container_depth = depth + best, depth
        if ancestor.type == tree.XML_ELEMENT_NODE and ancestor.ns == NULL:
            raw = <bytes>ancestor.name
            if raw in wanted:
                found.append(wanted[raw])
                if raw == b"a":
                    outer_href = _attribute(ancestor, b"href") or ""
        if depth <= class_levels:
            class_texts.append((_attribute(ancestor, b"class") or "") + " " + (_attribute(ancestor, b"id") or ""))
        if not itemprop_image and ancestor.properties != NULL:
            itemprop_image = _attribute_is(ancestor, b"itemprop", b"image")
        ancestor = _parent(ancestor)
    return (depth, h1_distance, paragraph_distance, container_depth, found, class_texts, outer_href,
            itemprop_image)
