"""The parent template's optional Slack delivery: deployed only with SlackWebhookSecretArn set, subscribed to the
stack's topic, and allowed to read that one secret and nothing more."""

from __future__ import annotations

from templates.asl import REPO_ROOT, load_template

PARENT = load_template(REPO_ROOT / "template.yaml")
RESOURCES = PARENT["Resources"]
NOTIFIER = ("SlackNotifierFunction", "SlackNotifierRole", "SlackNotifierLogGroup")


def test_the_notifier_exists_only_when_the_secret_parameter_is_set() -> None:
    parameter = PARENT["Parameters"]["SlackWebhookSecretArn"]
    assert parameter["Default"] == ""
    assert PARENT["Conditions"]["DeliverToSlack"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "SlackWebhookSecretArn"}, ""]}]
    }
    assert {
        name for name, resource in RESOURCES.items() if resource.get("Condition") == "DeliverToSlack"
    } == set(NOTIFIER)


def test_the_notifier_receives_every_notification_of_the_topic_and_knows_only_the_secrets_arn() -> None:
    properties = RESOURCES["SlackNotifierFunction"]["Properties"]
    assert properties["Events"] == {
        "StageNotifications": {"Type": "SNS", "Properties": {"Topic": {"Ref": "NotificationTopic"}}}
    }
    assert properties["Environment"]["Variables"]["SLACK_WEBHOOK_SECRET_ARN"] == {
        "Ref": "SlackWebhookSecretArn"
    }
    assert properties["Handler"] == "slack_notifier.lambda_handler"
    assert (REPO_ROOT / properties["CodeUri"] / "slack_notifier.py").is_file()


def test_the_role_reads_that_secret_only() -> None:
    [policy] = RESOURCES["SlackNotifierRole"]["Properties"]["Policies"]
    statements = policy["PolicyDocument"]["Statement"]
    secret_statements = [item for item in statements if "secretsmanager" in str(item["Action"])]
    assert secret_statements == [
        {
            "Sid": "ReadWebhookSecret",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": {"Ref": "SlackWebhookSecretArn"},
        }
    ]
