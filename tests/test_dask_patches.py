"""The private Beam and dask API that lait/pipeline/dask_patches.py depends on, checked by name.

A Beam or dask release that renames, removes or reshapes one of these fails here, naming the
patch that needs a look, instead of a Dask run failing (or losing records) later. What each
patch does on a real cluster is tests/test_dask_runner.py's job.
"""

from __future__ import annotations

import dataclasses
import inspect

import apache_beam as beam
import pytest
from apache_beam.transforms.window import GlobalWindows

pytest.importorskip("dask.distributed")

from apache_beam.runners import common  # noqa: E402
from apache_beam.runners.dask import dask_runner, overrides, transform_evaluator  # noqa: E402

from lait.pipeline import dask_patches  # noqa: E402
from lait.pipeline.in_process_runner import InProcessRunner


def _parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_translations_table_has_the_keys_install_replaces():
    # All patches: install() swaps entries of this dict and two attributes of dask_runner.
    table = transform_evaluator.TRANSLATIONS
    assert isinstance(table, dict)
    for key, beam_op in ((beam.ParDo, transform_evaluator.ParDo),
                         (overrides._GroupByKeyOnly, transform_evaluator.GroupByKey),
                         (overrides._Flatten, transform_evaluator.Flatten)):
        assert key in table, f"Beam's Dask TRANSLATIONS lost {key.__name__}"
        assert issubclass(table[key], beam_op)
    assert callable(dask_runner.dask_overrides), "patch 5 replaces dask_runner.dask_overrides"
    assert isinstance(inspect.getattr_static(dask_runner.DaskRunner, "to_dask_bag_visitor"), staticmethod)
    # run_pipeline must still look both up by these names, or replacing them does nothing.
    names = dask_runner.DaskRunner.run_pipeline.__code__.co_names
    assert "dask_overrides" in names and "to_dask_bag_visitor" in names and "bags" in names


def test_dask_bag_op_fields_the_fixed_ops_inherit():
    # Patches 1-4 subclass DaskBagOp's translations and read `applied` and `bag_kwargs`.
    assert [f.name for f in dataclasses.fields(transform_evaluator.DaskBagOp)] == ["applied", "bag_kwargs"]
    assert _parameters(transform_evaluator.ParDo.apply)[:3] == ["self", "input_bag", "side_inputs"]
    assert transform_evaluator.NoOp and transform_evaluator.Flatten


def test_beam_helpers_the_pardo_patch_calls():
    # Patch 1: windowing helpers, the output handler, the invoker and the DoFn context.
    assert _parameters(transform_evaluator.get_windowed_value) == ["item", "window_fn"]
    assert transform_evaluator.defenestrate(transform_evaluator.get_windowed_value(3, None)) == 3
    assert _parameters(transform_evaluator.DaskBagWindowedIterator)[:2] == ["bag", "window_fn"]
    assert transform_evaluator._OutputHandler is common._OutputHandler
    receivers = dask_patches._ValuesPerTag()
    dask_patches._output_handler(GlobalWindows(), receivers)  # the keyword arguments still accepted
    assert _parameters(common.DoFnInvoker.create_invoker)[:2] == ["signature", "output_handler"]
    for keyword in ("context", "side_inputs", "input_args", "input_kwargs", "user_state_context",
                    "bundle_finalizer_param"):
        assert keyword in _parameters(common.DoFnInvoker.create_invoker), keyword
    transform_evaluator.DoFnContext("label", state=None)
    transform_evaluator.DoFn.BundleFinalizerParam()


def test_a_pardo_runs_through_the_patched_bundle_function():
    # Patch 1 end to end in this process: setup once per thread, finish_bundle outputs kept.
    class EmitsAtFinish(beam.DoFn):
        def process(self, element):
            yield element * 2

        def finish_bundle(self):
            yield beam.utils.windowed_value.WindowedValue(-1, 0, [beam.transforms.window.GlobalWindow()])

    spec = dask_patches._BundleSpec(
        "test/EmitsAtFinish", GlobalWindows(), [], common.DoFnSignature(EmitsAtFinish()),
        dict(context=transform_evaluator.DoFnContext("EmitsAtFinish", state=None), input_args=[], input_kwargs={},
             user_state_context=None, bundle_finalizer_param=transform_evaluator.DoFn.BundleFinalizerParam()),
        tags=())
    assert dask_patches._apply_dofn_to_bundle([1, 2], spec) == [2, 4, -1]


def test_side_input_attributes_the_patches_read():
    # Patches 1 and 2: SideInputMap's private fields and AsSideInput's view options.
    from apache_beam.transforms.sideinputs import SideInputMap

    with beam.Pipeline(runner=InProcessRunner()) as pipeline:
        side = beam.pvalue.AsList(pipeline | beam.Create([1]))
        assert callable(side._view_options) and hasattr(side, "_window_mapping_fn") and side.pvalue is not None
        mapped = SideInputMap(type(side), side._view_options(), [])
        assert mapped._view_class is type(side) and mapped._view_options is not None and hasattr(mapped, "_iterable")


def test_dask_task_spec_shapes():
    # Patches 1, 2 and 4 build task graphs with dask's private task spec.
    from dask._task_spec import DataNode, List, Task, TaskRef
    from dask.bag import Bag
    from dask.highlevelgraph import HighLevelGraph

    assert _parameters(Task)[:2] == ["key", "func"]
    assert _parameters(TaskRef) == ["key"]
    assert _parameters(DataNode) == ["key", "value"]
    assert _parameters(List)[0] == "args"
    assert _parameters(Bag) == ["dsk", "name", "npartitions"]
    assert _parameters(HighLevelGraph.from_collections)[:3] == ["name", "layer", "dependencies"]
    # A partition that concatenates an upstream partition and a literal, as FixedFlatten builds them.
    layer = {("joined", 0): Task(("joined", 0), dask_patches._concatenate,
                                 List(TaskRef(("in", 0)), DataNode(None, [1])))}
    inputs = Bag(HighLevelGraph.from_collections("in", {("in", 0): DataNode(("in", 0), [2])}), "in", 1)
    bag = Bag(HighLevelGraph.from_collections("joined", layer, dependencies=[inputs]), "joined", 1)
    assert bag.compute(scheduler="sync") == [2, 1]


def test_lifted_combine_constructor():
    # Patch 5.
    from apache_beam.transforms.combiners import LiftedCombinePerKey

    assert _parameters(LiftedCombinePerKey)[:3] == ["combine_fn", "args", "kwargs"]
    assert callable(overrides.dask_overrides)


def test_upstream_still_collects_outputs_before_finish_bundle():
    """When this fails, Beam's own ParDo keeps finish_bundle outputs: patch 1 may be dropped."""
    source = inspect.getsource(transform_evaluator.apply_dofn_to_bundle)
    assert source.index("tagged_receivers.values") < source.index("invoke_finish_bundle")
