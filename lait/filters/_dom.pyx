# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Two walks of :mod:`lait.filters.page` compiled: over libxml2's nodes in C, instead of one lxml
proxy object per element and event.

- :func:`scan`: :func:`lait.filters.page.walk_body`, the visible text and where images sit in it.
- :func:`index`: :func:`lait.filters.page.index_elements`, the elements looked up by tag or by
  `itemprop=image` wherever they are.

Each must give exactly what its Python definition gives (tests/test_page.py compares them on
every shared page); the Python stays the definition, and runs wherever this module was not
built. Tags are classified by the sets page.py passes in (:func:`set_tag_kinds`), so they are
written once.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.unicode cimport PyUnicode_DecodeUTF8
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


cdef inline unsigned int _hash(const char* name) noexcept nogil:
    cdef unsigned int h = 2166136261u
    while name[0]:
        h = (h ^ <unsigned char>name[0]) * 16777619u
        name += 1
    return h


def set_tag_kinds(invisible, inline, image, block_text, indexed) -> None:
    """Classify tags as page.py's sets do; every other tag is a plain block element.
    `indexed` are the tags :func:`index` collects."""
    global _configured, _indexed_tags
    cdef int i
    for i in range(SLOTS):
        _slots[i].kind = 0
    kinds = {}
    for names, kind in ((invisible, INVISIBLE), (inline, INLINE), (image, IMAGE), (block_text, BLOCK_TEXT),
                        (indexed, INDEXED)):
        for name in names:
            kinds[name] = kinds.get(name, 0) | kind
    kinds["noscript"] = kinds.get("noscript", 0) | NOSCRIPT
    kinds["h1"] = kinds.get("h1", 0) | H1
    cdef bytes raw
    cdef unsigned int slot
    for name, kind in kinds.items():
        raw = name.encode("ascii")
        if len(raw) >= NAME_BYTES:
            raise ValueError(f"tag name too long for the table: {name}")
        slot = _hash(raw) % SLOTS
        while _slots[slot].kind:
            slot = (slot + 1) % SLOTS
        memcpy(_slots[slot].name, <const char*>raw, len(raw) + 1)
        _slots[slot].kind = kind | KNOWN
    _indexed_tags = tuple(indexed)
    _configured = True


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


cdef void _noscript_images(list images, cetree._Document doc, tree.xmlNode* top, Py_ssize_t offset,
                           Py_ssize_t order) except *:
    """Every <img> below `top`, in document order (`element.iter("img")`)."""
    cdef tree.xmlNode* node = top.children
    while node != NULL:
        if node.type == tree.XML_ELEMENT_NODE:
            if node.ns == NULL and strcmp(<const char*>node.name, b"img") == 0:
                images.append((cetree.elementFactory(doc, node), offset, order, True))
            if node.children != NULL:
                node = node.children
                continue
        while node != NULL and node.next == NULL:
            node = node.parent
            if node == top:
                return
        if node != NULL:
            node = node.next


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
