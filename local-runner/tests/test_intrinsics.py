"""The intrinsic-function evaluator on its own: template fragments against a scope of plain data, no AWS."""

from __future__ import annotations

from typing import Any

import pytest
from h2o_sagemaker_local.stack.intrinsics import (
    Scope,
    TemplateError,
    evaluate,
    pseudo_parameters,
    references,
)

TOPIC_ARN = "arn:aws:sns:eu-west-1:111122223333:app-Topic"
STACK_ID = "arn:aws:cloudformation:eu-west-1:111122223333:stack/app/local"


def scope(**conditions: bool) -> Scope:
    return Scope(
        parameters={"Stage": "dev", "Names": "alpha,beta,gamma", "Shadowed": "the parameter"},
        pseudo_parameters=pseudo_parameters(
            region="eu-west-1", account_id="111122223333", stack_name="app", stack_id=STACK_ID
        )
        | {"Shadowed": "the pseudo parameter"},
        resources={
            "Topic": {"Ref": TOPIC_ARN, "TopicName": "app-Topic"},
            "Child": {"Ref": "child-stack-id", "Outputs": {"Url": "https://child"}},
        },
        conditions=conditions,
    )


def test_pseudo_parameters_are_those_of_the_given_stack_in_the_aws_partition() -> None:
    assert pseudo_parameters(
        region="eu-west-1", account_id="111122223333", stack_name="app", stack_id=STACK_ID
    ) == {
        "AWS::Region": "eu-west-1",
        "AWS::AccountId": "111122223333",
        "AWS::Partition": "aws",
        "AWS::StackName": "app",
        "AWS::StackId": STACK_ID,
        "AWS::URLSuffix": "amazonaws.com",
    }


@pytest.mark.parametrize(
    ("fragment", "value"),
    [
        ({"Ref": "Stage"}, "dev"),
        ({"Ref": "AWS::Region"}, "eu-west-1"),
        ({"Ref": "Topic"}, TOPIC_ARN),  # a resource's Ref is its physical id
        ({"Ref": "Shadowed"}, "the parameter"),  # parameters before pseudo parameters
        ({"Fn::GetAtt": ["Topic", "TopicName"]}, "app-Topic"),
        ({"Fn::GetAtt": "Topic.TopicName"}, "app-Topic"),
        ({"Fn::GetAtt": "Child.Outputs.Url"}, "https://child"),
        ({"Fn::Sub": "${AWS::StackName}-${Stage}"}, "app-dev"),
        ({"Fn::Sub": "${Topic.TopicName}:${Topic}"}, f"app-Topic:{TOPIC_ARN}"),
        ({"Fn::Sub": "${!Literal}-${Stage}"}, "${Literal}-dev"),
        (
            {"Fn::Sub": ["${Stage}/${Name}", {"Name": {"Ref": "Topic"}, "Stage": "given"}]},
            f"given/{TOPIC_ARN}",
        ),
        ({"Fn::Join": [",", [{"Ref": "Stage"}, 1, "x"]]}, "dev,1,x"),
        ({"Fn::Split": [",", {"Ref": "Names"}]}, ["alpha", "beta", "gamma"]),
        ({"Fn::Select": ["2", {"Fn::Split": [",", {"Ref": "Names"}]}]}, "gamma"),
        ({"Fn::Equals": [{"Ref": "Stage"}, "dev"]}, True),
        ({"Fn::Equals": [{"Ref": "Stage"}, "prod"]}, False),
        ({"Fn::Not": [{"Fn::Equals": [{"Ref": "Stage"}, "prod"]}]}, True),
    ],
    ids=lambda item: str(item) if isinstance(item, dict) else None,
)
def test_each_function_evaluates_to_its_value(fragment: dict[str, Any], value: Any) -> None:
    assert evaluate(fragment, scope()) == value


def test_conditions_choose_the_branch_and_only_the_chosen_one_is_evaluated() -> None:
    fragment = {"Fn::If": ["IsProd", {"Ref": "Missing"}, {"Fn::If": ["OwnTopic", {"Ref": "Topic"}, "none"]}]}
    assert evaluate(fragment, scope(IsProd=False, OwnTopic=True)) == TOPIC_ARN
    assert evaluate(fragment, scope(IsProd=False, OwnTopic=False)) == "none"
    assert evaluate({"Fn::Not": [{"Condition": "IsProd"}]}, scope(IsProd=True)) is False


def test_a_fragment_is_evaluated_throughout_and_plain_values_stay_as_they_are() -> None:
    fragment = {
        "Name": {"Fn::Sub": "${Stage}-logs"},
        "Tags": [{"Key": "topic", "Value": {"Ref": "Topic"}}, "plain", 3, None],
        # Two keys: a mapping, not a function call, even though one key is a function's name.
        "Mixed": {"Ref": "Stage", "Other": True},
    }
    assert evaluate(fragment, scope()) == {
        "Name": "dev-logs",
        "Tags": [{"Key": "topic", "Value": TOPIC_ARN}, "plain", 3, None],
        "Mixed": {"Ref": "Stage", "Other": True},
    }


@pytest.mark.parametrize(
    ("fragment", "message"),
    [
        ({"Ref": "Missing"}, "Ref Missing: no parameter, pseudo parameter or created resource of that name"),
        (
            {"Fn::Sub": "${Missing}"},
            "Ref Missing: no parameter, pseudo parameter or created resource of that name",
        ),
        ({"Fn::GetAtt": "Missing.Arn"}, "Fn::GetAtt Missing.Arn: no created resource Missing"),
        ({"Fn::GetAtt": ["Topic", "Nope"]}, "Fn::GetAtt Topic.Nope: Topic has no attribute Nope"),
        (
            {"Fn::GetAtt": "Child.Outputs.Nope"},
            "Fn::GetAtt Child.Outputs.Nope: Child has no attribute Outputs.Nope",
        ),
        ({"Fn::If": ["Undefined", "a", "b"]}, "condition Undefined is not defined in Conditions"),
        ({"Condition": "Undefined"}, "condition Undefined is not defined in Conditions"),
        ({"Fn::FindInMap": ["Map", "Key", "Value"]}, "Fn::FindInMap is not supported by the local deployer"),
    ],
    ids=[
        "ref",
        "sub",
        "getatt-resource",
        "getatt-attribute",
        "getatt-output",
        "if",
        "condition",
        "unsupported",
    ],
)
def test_what_cannot_be_evaluated_is_a_template_error_naming_it(
    fragment: dict[str, Any], message: str
) -> None:
    with pytest.raises(TemplateError) as error:
        evaluate(fragment, scope())
    assert str(error.value) == message


def test_references_are_the_names_a_fragment_uses_except_escaped_ones() -> None:
    fragment = {
        "A": {"Ref": "Bucket"},
        "B": [{"Fn::GetAtt": ["Role", "Arn"]}, {"Fn::GetAtt": "Function.Arn"}],
        "C": {"Fn::Sub": "${Topic.TopicName}/${AWS::Region}/${!Escaped}"},
        "D": {"Fn::Sub": ["${Name}", {"Name": {"Ref": "Machine"}}]},
        "E": {"Fn::If": ["Cond", {"Ref": "Queue"}, "literal"]},
    }
    assert references(fragment) == {
        "Bucket",
        "Role",
        "Function",
        "Topic",
        "AWS::Region",
        "Name",
        "Machine",
        "Queue",
    }
