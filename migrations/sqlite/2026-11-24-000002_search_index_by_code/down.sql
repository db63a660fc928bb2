CREATE TRIGGER users_search_insert AFTER INSERT ON users BEGIN
    INSERT INTO users_search(rowid, search_text) VALUES (new.id, new.search_text);
END;
