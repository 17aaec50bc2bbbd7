"""Every patch lait makes to Beam's Dask runner, in one place, each on the private API it needs.

Beam's `DaskRunner` (apache_beam.runners.dask, checked at apache-beam 2.77 and dask 2026.8)
turns each ParDo into a `map_partitions` over a dask Bag. Its translations are private, with
no extension point, so each fix below replaces one of them; :func:`install` puts them all in
place. What each works around:

1. ParDo (:class:`FixedParDo`): Beam collects a bundle's outputs *before* calling
   `finish_bundle`, so whatever a DoFn emits there is lost (`BatchElements`, used before
   every model call as `RunInference` does, loses its last batch of every bundle); it sets
   up a DoFn for every partition (models load once per partition, not once per worker as
   `DoFn.setup` promises); and a side input is a Bag every task computes again, with
   everything upstream of it.
2. Multi-output ParDo (:class:`FixedParDo`, :class:`BagVisitor`): Beam puts every output
   tag in one Bag (tagged values still wrapped), and every consumer of any output reads all
   of them.
3. GroupByKey (:class:`FixedGroupByKey`): Beam's grouped partitions are one-shot iterators,
   and `--dask_npartitions` does not bound the shuffle.
4. Flatten (:class:`FixedFlatten`): `Bag.concat` adds up its inputs' partitions, and every
   later step keeps them.
5. CombinePerKey (:class:`LiftCombinePerKey`): Beam's Dask runner does not lift combiners,
   so every `Count`, `Sum` and `Top` sends each element through the shuffle.

tests/test_dask_patches.py checks that every private name used here still exists with the
shape used here, so a Beam or dask upgrade that changes one fails there, by name, instead
of in a run; tests/test_dask_runner.py checks what each fix does on a real cluster.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import uuid

from apache_beam import pvalue
from apache_beam.pipeline import PipelineVisitor, PTransformOverride
from apache_beam.runners.common import DoFnInvoker, DoFnSignature, Receiver
from apache_beam.runners.dask import overrides, transform_evaluator
from apache_beam.transforms.combiners import LiftedCombinePerKey
from apache_beam.transforms.core import CombinePerKey
from apache_beam.transforms.sideinputs import SideInputMap
from dask._task_spec import DataNode, List, Task, TaskRef

_thread_dofns = threading.local()
_TASK_NAME_CHARS = re.compile(r"[^A-Za-z0-9]+")


def _dofn_for(label: str, signature: DoFnSignature) -> tuple[DoFnSignature, bool]:
    """This thread's set-up DoFn for the transform `label`; True when it still needs `setup`."""
    cache = getattr(_thread_dofns, "by_label", None)
    if cache is None:
        cache = _thread_dofns.by_label = {}
    if label in cache:
        return cache[label], False
    cache[label] = signature
    return signature, True


@dataclasses.dataclass
class _BundleSpec:
    """What a partition task needs to run one ParDo; dask names it by a fresh id instead of
    hashing (pickling) the DoFn and everything it holds for every task graph it builds.

    `tags` are the ParDo's tagged outputs; without any, a task returns its main output's
    values, with some a ``{tag: values}`` dict (None: the main output).
    """

    label: str
    window_fn: object
    side_specs: list
    signature: DoFnSignature
    invoker_kwargs: dict
    tags: tuple
    token: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex)

    def __dask_tokenize__(self) -> str:
        return self.token


class _ValuesPerTag(dict):
    """One bundle's receivers, one per output tag (None: the main output), each keeping its values."""

    def __missing__(self, tag):
        receiver = self[tag] = _ValueReceiver()
        return receiver


class _ValueReceiver(Receiver):
    def __init__(self) -> None:
        self.values: list = []

    def receive(self, windowed_value) -> None:
        self.values.append(windowed_value.value)


def _output_handler(window_fn, receivers: _ValuesPerTag):
    return transform_evaluator._OutputHandler(
        window_fn=window_fn, main_receivers=receivers[None], tagged_receivers=receivers,
        per_element_output_counter=None, output_batch_converter=None,
        process_yields_batches=False, process_batch_yields_elements=False)


def _apply_dofn_to_bundle(items, spec: _BundleSpec, *side_values):
    """One partition as one bundle: setup once per thread, process, finish_bundle, then collect outputs.

    An empty partition is no bundle at all, as on Beam's other runners: a worker that never
    gets an element for a step never loads that step's models.
    """
    window_fn = spec.window_fn
    items = [transform_evaluator.get_windowed_value(item, window_fn) for item in items]
    receivers = _ValuesPerTag()
    if items:
        side_inputs = [
            SideInputMap(view_class, view_options,
                         [transform_evaluator.get_windowed_value(v, window_fn) for v in values])
            for (view_class, view_options), values in zip(spec.side_specs, side_values, strict=True)
        ]
        signature, needs_setup = _dofn_for(spec.label, spec.signature)
        invoker = DoFnInvoker.create_invoker(signature, _output_handler(window_fn, receivers),
                                             **dict(spec.invoker_kwargs, side_inputs=side_inputs))
        if needs_setup:
            invoker.invoke_setup()
        invoker.invoke_start_bundle()
        for item in items:
            invoker.invoke_process(item)
        invoker.invoke_finish_bundle()
    if not spec.tags:
        return receivers[None].values
    return {tag: receivers[tag].values for tag in (None, *spec.tags)}


def _tag_values(outputs: dict, tag, *split_first) -> list:
    """One tag's values of a multi-output partition; `split_first` only orders the tasks."""
    return outputs[tag]


def _partitionwise(function, bag, spec: _BundleSpec, items: list):
    """``function(partition, spec, *item_values)`` for each partition of `bag`, as a new Bag.

    Not `Bag.map_partitions`: it hands an Item argument through `unpack_collections`, which
    optimises the Item's graph on its own and renames its keys (`ProhibitReuse`), so everything
    upstream of a side input would run twice, once for the side input and once for the main
    input. Here the tasks refer to the Items' own keys, shared with the rest of the graph.
    """
    from dask.bag import Bag
    from dask.highlevelgraph import HighLevelGraph

    # The step's label in its key: the dask dashboard and task stream name tasks by key prefix.
    name = f"{_TASK_NAME_CHARS.sub('_', spec.label)}-{spec.token}"
    spec_node = DataNode(None, spec)  # a literal: never traversed for dask collections
    item_refs = [TaskRef(item.key) for item in items]
    layer = {(name, i): Task((name, i), function, TaskRef((bag.name, i)), spec_node, *item_refs)
             for i in range(bag.npartitions)}
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[bag, *items])
    return Bag(graph, name, bag.npartitions)


def _concatenate(partitions) -> list:
    return [value for partition in partitions for value in partition]


# Patches 1 and 2. Work around Beam's `transform_evaluator.ParDo` / `apply_dofn_to_bundle`: outputs
# collected before `finish_bundle` (lost), a DoFn set up per partition, side inputs recomputed by
# every task, all output tags in one Bag. Use the private `_OutputHandler`, `DoFnContext`,
# `get_windowed_value`, a side input's `_view_class`/`_view_options`/`_iterable.bag`, and
# `dask._task_spec` (Task, TaskRef, DataNode) to build the partition tasks.
class FixedParDo(transform_evaluator.ParDo):
    """Beam's Dask ParDo translation with finish_bundle outputs, a Bag per output tag,
    computed-once side inputs and DoFn reuse."""

    def apply(self, input_bag, side_inputs=None):
        transform = self.transform
        main_input = next(iter(self.applied.main_inputs.values()))
        window_fn = main_input.windowing.windowfn if hasattr(main_input, "windowing") else None
        # Placeholders where the side inputs go (the invoker fills them), not Beam's `raw_side_inputs`
        # (the AsDict/AsList objects themselves, which only a round trip through the proto replaces).
        invoker_kwargs = dict(
            context=transform_evaluator.DoFnContext(transform.label, state=None),
            input_args=list(transform.args), input_kwargs=transform.kwargs, user_state_context=None,
            bundle_finalizer_param=transform_evaluator.DoFn.BundleFinalizerParam(),
        )
        side_inputs = side_inputs or []
        side_specs = [(side._view_class, side._view_options) for side in side_inputs]
        # Each side input becomes a dask Item (the whole Bag as one list): computed once, in the
        # same graph, and handed to every partition that reads it.
        side_items = [side._iterable.bag.reduction(list, _concatenate) for side in side_inputs]
        tags = tuple(tag for tag in self.applied.outputs if tag is not None)
        spec = _BundleSpec(self.applied.full_label, window_fn, side_specs, DoFnSignature(transform.fn),
                           invoker_kwargs, tags)
        outputs = _partitionwise(_apply_dofn_to_bundle, input_bag, spec, side_items)
        return _split_by_tag(outputs, tags) if tags else outputs


def _split_by_tag(outputs, tags: tuple) -> dict:
    """``{tag: Bag}`` (None: the main output) from a Bag whose partitions are ``{tag: values}``.

    Each main-output task waits for its partition's tagged-output tasks, so those run at
    once, on the worker that made the partition, and the partition is freed. Left to
    dask.order, a stage's small outputs (its counts, its drops) would be split off last: each
    partition (a ReadCrawl partition holds its pages and images) would stay in memory through
    the next stage, and an idle worker that took the split over would pull it across.
    """
    tagged = {tag: _tag_bag(outputs, tag, after=[]) for tag in tags}
    return {None: _tag_bag(outputs, None, after=list(tagged.values())), **tagged}


def _tag_bag(outputs, tag, after: list):
    from dask.bag import Bag
    from dask.highlevelgraph import HighLevelGraph

    name = f"{outputs.name}-{_TASK_NAME_CHARS.sub('_', tag or 'main')}"
    layer = {(name, i): Task((name, i), _tag_values, TaskRef((outputs.name, i)), tag,
                             *(TaskRef((bag.name, i)) for bag in after))
             for i in range(outputs.npartitions)}
    return Bag(HighLevelGraph.from_collections(name, layer, dependencies=[outputs, *after]), name,
               outputs.npartitions)


# Patch 2. Works around `DaskRunner.to_dask_bag_visitor`: it maps a producer to one Bag, so a
# consumer of one output tag reads every tag. Uses `transform_evaluator.TRANSLATIONS`, `NoOp`,
# `Flatten`, `DaskBagWindowedIterator` and a side input's `_view_options()`/`_window_mapping_fn`.
class BagVisitor(PipelineVisitor):
    """Beam's Dask pipeline visitor (`DaskRunner.to_dask_bag_visitor`), except that a consumer of
    a multi-output ParDo gets its own tag's Bag, not one Bag of every tag."""

    def __init__(self, bag_kwargs: dict | None = None):
        self.bag_kwargs = bag_kwargs or {}
        self.bags: dict = {}  # AppliedPTransform -> Bag, or {tag: Bag} for a multi-output ParDo

    def _bag_of(self, pcoll):
        bag = self.bags[pcoll.producer]
        return bag[pcoll.tag] if isinstance(bag, dict) else bag

    def visit_transform(self, transform_node) -> None:
        op = transform_evaluator.TRANSLATIONS.get(type(transform_node.transform), transform_evaluator.NoOp)(
            transform_node, bag_kwargs=self.bag_kwargs)
        op_kwargs = {"input_bag": None, "side_inputs": None}
        if transform_node.inputs:
            bags = [None if isinstance(value, pvalue.PBegin) else self._bag_of(value)
                    for value in transform_node.inputs
                    if isinstance(value, pvalue.PBegin) or value.producer in self.bags]
            # Flatten takes a list even of one input.
            single = len(bags) == 1 and not isinstance(op, transform_evaluator.Flatten)
            op_kwargs["input_bag"] = bags[0] if single else bags
        if transform_node.side_inputs:
            op_kwargs["side_inputs"] = [
                SideInputMap(type(side), side._view_options(),
                             transform_evaluator.DaskBagWindowedIterator(self._bag_of(side.pvalue),
                                                                         side._window_mapping_fn))
                for side in transform_node.side_inputs]
        self.bags[transform_node] = op.apply(**op_kwargs)


def _groups(partition) -> list:
    return [(key, [transform_evaluator.defenestrate(value[1]) for value in values]) for key, values in partition]


# Patch 3. Works around `transform_evaluator.GroupByKey`: `.map` over grouped partitions gives
# one-shot iterators, and nothing bounds the partitions going into the shuffle. Uses `defenestrate`
# and the `bag_kwargs` field of `DaskBagOp`.
class FixedGroupByKey(transform_evaluator.GroupByKey):
    """Beam's Dask GroupByKey with each partition a list, never a one-shot iterator, and at most
    ``--dask_npartitions`` partitions going into the shuffle."""

    def apply(self, input_bag, side_inputs=None):
        bag = _at_most(input_bag, self.bag_kwargs.get("npartitions"))
        return bag.groupby(lambda item: item[0]).map_partitions(_groups)


# Patch 4. Works around `transform_evaluator.Flatten` (`Bag.concat`). Uses `dask._task_spec`'s
# Task, TaskRef and List.
class FixedFlatten(transform_evaluator.Flatten):
    """Beam's Dask Flatten with at most ``--dask_npartitions`` partitions, each worker's share of
    every input kept together.

    `Bag.concat` adds up its inputs' partitions, and every later step keeps them: the funnel
    flattens some twenty stage outputs, so its combiners would run as one task per partition
    of all of them, on a few counts each. Output partition ``i`` takes partition ``j`` of every
    input where ``j % npartitions == i``: a step's partition ``j`` was made where partition
    ``j`` of the step before it was, so the merge moves nothing between workers. Merging
    neighbours (`Bag.repartition`) would put the first inputs' partitions together instead: a
    stage's drops, all from the first input, would be sampled by one worker alone.
    """

    def apply(self, input_bag, side_inputs=None):
        npartitions = self.bag_kwargs.get("npartitions") or max(bag.npartitions for bag in input_bag)
        return _interleaved(input_bag, npartitions)


def _interleaved(bags: list, npartitions: int):
    """One Bag of `npartitions` partitions; partition ``i`` concatenates partitions ``j`` of every
    bag with ``j % npartitions == i``."""
    from dask.bag import Bag
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    name = f"flatten-{tokenize([bag.name for bag in bags], npartitions)}"
    layer = {(name, i): Task((name, i), _concatenate, List(*(TaskRef((bag.name, j)) for bag in bags
                                                           for j in range(i, bag.npartitions, npartitions))))
             for i in range(npartitions)}
    return Bag(HighLevelGraph.from_collections(name, layer, dependencies=bags), name, npartitions)


def _at_most(bag, npartitions: int | None):
    """`bag` with neighbouring partitions merged (no shuffle) down to `npartitions`."""
    return bag.repartition(npartitions) if npartitions and bag.npartitions > npartitions else bag


# Patch 5. Works around `dask_runner.dask_overrides`, which has no combiner lifting: the funnel's
# counters and the rejects' samples would send every element through the shuffle. Replaces the
# module attribute `dask_runner.dask_overrides` that `DaskRunner.run_pipeline` calls.
class LiftCombinePerKey(PTransformOverride):
    """`CombinePerKey` as Beam's `LiftedCombinePerKey`: combine each bundle, shuffle the accumulators.

    The DirectRunner's own override (`direct_runner._get_transform_overrides`) does the same,
    but it is local to a function that returns the DirectRunner's other overrides with it.
    """

    def matches(self, applied_ptransform) -> bool:
        return (isinstance(applied_ptransform.transform, CombinePerKey)
                and applied_ptransform.inputs[0].windowing.is_default())

    def get_replacement_transform_for_applied_ptransform(self, applied_ptransform):
        transform = applied_ptransform.transform
        try:
            return LiftedCombinePerKey(transform.fn, transform.args, transform.kwargs)
        except NotImplementedError:  # ten or more side inputs: Beam leaves those unlifted too
            return transform


def _overrides_with_lifted_combiners() -> list:
    # First: the lifted combine's own GroupByKey must still meet the Dask GroupByKey override.
    return [LiftCombinePerKey(), *overrides.dask_overrides()]


def install() -> None:
    """Put every patch in place for each pipeline Beam's Dask runner runs from now on (idempotent)."""
    import apache_beam
    from apache_beam.runners.dask import dask_runner

    transform_evaluator.TRANSLATIONS[apache_beam.ParDo] = FixedParDo
    transform_evaluator.TRANSLATIONS[overrides._GroupByKeyOnly] = FixedGroupByKey
    transform_evaluator.TRANSLATIONS[overrides._Flatten] = FixedFlatten
    dask_runner.dask_overrides = _overrides_with_lifted_combiners
    dask_runner.DaskRunner.to_dask_bag_visitor = staticmethod(BagVisitor)
