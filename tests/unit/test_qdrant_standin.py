"""The Qdrant stand-in itself, read by qdrant_client's sync REST client: its answers parse as the
official client's REST models, its errors carry Qdrant's statuses and messages, and ``wait`` means
what the API says.
"""

from __future__ import annotations

import time
import uuid
import warnings

import httpx
import pytest

qdrant_client = pytest.importorskip("qdrant_client")
from qdrant_client import QdrantClient, models  # noqa: E402
from qdrant_client.http.exceptions import UnexpectedResponse  # noqa: E402

from tests.helpers.qdrant_standin import QdrantStandin  # noqa: E402  (after the importorskip)

ID = [str(uuid.UUID(int=i)) for i in range(10)]


@pytest.fixture
def standin():
    with QdrantStandin() as server:
        yield server
        assert not server.internal_errors


@pytest.fixture
def client(standin):
    c = QdrantClient(url=standin.url, prefer_grpc=False, check_compatibility=False)
    yield c
    c.close()


def points(n: int = 6) -> list[models.PointStruct]:
    return [models.PointStruct(id=ID[i], vector=[1.0, float(i), 0.5], payload={"tag": f"t{i % 2}", "i": i, "ok": i < 2}) for i in range(n)]


def error(call) -> tuple[int, str]:
    with pytest.raises(UnexpectedResponse) as info:
        call()
    return info.value.status_code, info.value.structured()["status"]["error"]


def test_collections_round_trip_and_their_errors(client):
    assert not client.collection_exists("c")
    assert client.create_collection("c", vectors_config=models.VectorParams(size=3, distance=models.Distance.DOT))
    assert client.create_collection("marker", vectors_config={})  # no vectors at all: what vecbook makes before a size is known
    assert sorted(c.name for c in client.get_collections().collections) == ["c", "marker"]
    info = client.get_collection("c")
    assert info.config.params.vectors == models.VectorParams(size=3, distance=models.Distance.DOT) and info.points_count == 0
    assert error(lambda: client.create_collection("c", vectors_config=models.VectorParams(size=3, distance="Dot"))) == (409, "Wrong input: Collection `c` already exists!")
    assert error(lambda: client.get_collection("nope")) == (404, "Not found: Collection `nope` doesn't exist!")
    assert error(lambda: client.count("nope")) == (404, "Not found: Collection `nope` doesn't exist!")
    assert client.delete_collection("c") and not client.delete_collection("c")


def test_points_reads_and_pagination(client):
    client.create_collection("c", vectors_config=models.VectorParams(size=3, distance=models.Distance.DOT))
    result = client.upsert("c", points=points(), wait=True)
    assert result.status == models.UpdateStatus.COMPLETED
    assert client.count("c", count_filter=models.Filter(must=[models.FieldCondition(key="tag", match=models.MatchValue(value="t0"))])).count == 3
    hits = client.query_points("c", query=[0.0, 1.0, 0.0], limit=2, with_payload=True).points
    assert [h.id for h in hits] == [ID[5], ID[4]] and hits[0].score == pytest.approx(5.0) and hits[0].payload["i"] == 5
    bare = client.http.search_api.query_points("c", query_request=models.QueryRequest(query=[0.0, 1.0, 0.0], limit=1))
    assert bare.result.points[0].payload is None  # the server's default: no payload
    batch = client.query_batch_points("c", requests=[models.QueryRequest(query=[0.0, 1.0, 0.0], limit=1), models.QueryRequest(query=[0.0, -1.0, 0.0], limit=1)])
    assert [r.points[0].id for r in batch] == [ID[5], ID[0]]
    seen, offset = [], None
    while True:
        page, offset = client.scroll("c", limit=4, offset=offset, with_vectors=True)
        seen += page
        if offset is None:
            break
    assert [p.id for p in seen] == ID[:6] and seen[3].vector == [1.0, 3.0, 0.5] and seen[0].payload == {"tag": "t0", "i": 0, "ok": True}
    assert [r.id for r in client.retrieve("c", ids=[ID[2], ID[9]])] == [ID[2]]
    client.delete("c", points_selector=models.FilterSelector(filter=models.Filter(must=[models.FieldCondition(key="i", range=models.Range(gte=4))])))
    assert client.count("c").count == 4


def test_bad_requests_are_refused_as_the_server_refuses_them(client, standin):
    client.create_collection("c", vectors_config=models.VectorParams(size=3, distance=models.Distance.COSINE))
    status, message = error(lambda: client.upsert("c", points=[models.PointStruct(id=1, vector=[1.0, 2.0], payload={})]))
    assert status == 400 and message.startswith("Wrong input: Vector dimension error: expected dim: 3, got 2")
    status, message = error(lambda: client.upsert("c", points=[models.PointStruct(id="not-a-uuid", vector=[1.0, 2.0, 3.0])]))
    assert status == 400 and message.startswith("Format error in JSON body:") and "not-a-uuid" in message
    status, message = error(lambda: client.scroll("c", limit=0))
    assert status == 422 and message.startswith("Validation error in JSON body:")
    response = httpx.post(f"{standin.url}/collections/c/points/count", json={"filtre": {}})
    assert response.status_code == 400 and response.json()["status"]["error"].startswith("Format error in JSON body:")
    assert client.count("c").count == 0


def test_facets_need_a_payload_index_and_count_its_type_only(client):
    client.create_collection("c", vectors_config=models.VectorParams(size=3, distance=models.Distance.DOT))
    client.upsert("c", points=points() + [models.PointStruct(id=ID[7], vector=[1, 1, 1], payload={"tag": 7})])
    status, message = error(lambda: client.facet("c", key="tag"))
    assert status == 400 and message.startswith('Bad request: Index required but not found for "tag"')
    client.create_payload_index("c", field_name="tag", field_schema=models.PayloadSchemaType.KEYWORD, wait=True)
    client.create_payload_index("c", field_name="ok", field_schema=models.PayloadSchemaType.BOOL, wait=True)
    assert client.facet("c", key="tag", exact=True).hits == [models.FacetValueHit(value="t0", count=3), models.FacetValueHit(value="t1", count=3)]
    assert client.facet("c", key="ok", limit=1).hits == [models.FacetValueHit(value=False, count=4)]
    schema = client.get_collection("c").payload_schema
    assert schema["tag"].data_type == models.PayloadSchemaType.KEYWORD and schema["tag"].points == 7


def test_wait_false_updates_land_later_and_wait_true_ones_after_them(client, standin):
    standin.api.lag = 30.0  # far beyond any stall of a loaded machine
    client.create_collection("c", vectors_config=models.VectorParams(size=3, distance=models.Distance.DOT))
    assert client.upsert("c", points=points(2), wait=False).status == models.UpdateStatus.ACKNOWLEDGED
    assert client.count("c").count == 0  # acknowledged, not applied yet
    client.create_payload_index("c", field_name="tag", field_schema=models.PayloadSchemaType.KEYWORD, wait=False)
    assert error(lambda: client.facet("c", key="tag"))[0] == 400
    assert client.upsert("c", points=points(4)[2:], wait=True).status == models.UpdateStatus.COMPLETED
    assert client.count("c").count == 4 and len(client.facet("c", key="tag").hits) == 2  # earlier updates first
    standin.api.lag = 0.2
    client.upsert("c", points=points(6)[4:], wait=False)
    time.sleep(0.5)
    assert client.count("c").count == 6  # due: applied before the next request


def test_api_keys(standin):
    standin.api_key, standin.read_only_api_key = "rw-key", "ro-key"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Api key is used with an insecure connection"
        writer = QdrantClient(url=standin.url, api_key="rw-key", check_compatibility=False)
        reader = QdrantClient(url=standin.url, api_key="ro-key", check_compatibility=False)
        stranger = QdrantClient(url=standin.url, api_key="wrong", check_compatibility=False)
    nobody = QdrantClient(url=standin.url, check_compatibility=False)
    writer.create_collection("c", vectors_config=models.VectorParams(size=3, distance=models.Distance.DOT))
    writer.upsert("c", points=points(2))
    assert reader.count("c").count == 2 and len(reader.query_points("c", query=[1, 0, 0]).points) == 2
    for client, status in ((nobody, 401), (stranger, 403)):
        with pytest.raises(UnexpectedResponse) as info:
            client.get_collections()
        assert info.value.status_code == status
    with pytest.raises(UnexpectedResponse) as info:
        reader.create_payload_index("c", field_name="tag", field_schema=models.PayloadSchemaType.KEYWORD)
    assert info.value.status_code == 403
    for c in (writer, reader, stranger, nobody):
        c.close()


def test_a_body_over_the_request_limit_is_refused_whole(standin, client):
    standin.max_request_size = 64 * 1024
    client.create_collection("c", vectors_config=models.VectorParams(size=3, distance=models.Distance.DOT))
    big = [models.PointStruct(id=i, vector=[1.0, 2.0, 3.0], payload={"text": "x" * 1000}) for i in range(100)]
    status, message = error(lambda: client.upsert("c", points=big))
    assert status == 400 and message.startswith("JSON payload (") and "is larger than allowed (limit: 65536 bytes)" in message
    assert client.count("c").count == 0


def test_strict_mode_refuses_filters_on_keys_without_a_fitting_index(standin, client):
    standin.api.strict = True
    client.create_collection("c", vectors_config=models.VectorParams(size=3, distance=models.Distance.DOT))
    client.upsert("c", points=points())
    by_tag = models.Filter(must=[models.FieldCondition(key="tag", match=models.MatchValue(value="t0"))])
    by_i = models.Filter(should=[models.FieldCondition(key="i", range=models.Range(gte=2))])
    status, message = error(lambda: client.count("c", count_filter=by_tag))
    assert (status, message) == (400, 'Bad request: Index required but not found for "tag" of one of the following types: [keyword]. '
                                      "Help: Create an index for this key or use a different filter.")
    assert client.count("c").count == 6  # no filter, nothing to index
    client.create_payload_index("c", field_name="tag", field_schema=models.PayloadSchemaType.FLOAT, wait=True)
    assert error(lambda: client.scroll("c", scroll_filter=by_tag))[0] == 400  # a float index cannot match strings
    client.create_payload_index("c", field_name="tag", field_schema=models.PayloadSchemaType.KEYWORD, wait=True)
    assert client.count("c", count_filter=by_tag).count == 3
    assert "[float, integer]" in error(lambda: client.query_points("c", query=[1, 0, 0], query_filter=by_i))[1]
    client.create_payload_index("c", field_name="i", field_schema=models.PayloadSchemaType.INTEGER, wait=True)
    assert len(client.query_points("c", query=[1, 0, 0], query_filter=by_i).points) == 4
    nested = models.Filter(must=[models.NestedCondition(nested=models.Nested(key="n", filter=models.Filter(must=[models.FieldCondition(key="h", range=models.Range(gt=0))])))])
    assert 'not found for "n[].h"' in error(lambda: client.count("c", count_filter=nested))[1]
    status, message = error(lambda: client.delete("c", points_selector=models.FilterSelector(filter=models.Filter(must=[models.IsEmptyCondition(is_empty=models.PayloadField(key="ok"))]))))
    assert status == 400 and '"ok"' in message
    assert client.count("c").count == 6
